"""ingest stage: git histories and commit datasets → `CommitRecord` / `QuarantinedRecord`.

* `parser`   — pure: timestamps, dataset lines, the `git log -z --numstat` stream.
* `git`      — runs git: streaming `git log`, clone/fetch into the git cache, history splits.
* `datasets` — reads JSON Lines dataset files (gzip or plain), checksum watermarks.
* `sources`  — `resolve_source(spec, settings)` → a `Source` with `iter_records` / `watermarks`.
"""
