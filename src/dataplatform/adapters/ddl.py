"""DDL of the raw layer, portable between DuckDB and PostgreSQL.

`raw.commits` holds what ingestion produced (plaintext e-mails stay in `raw`, which only the
pipeline role reads) plus load-time columns: the keyed hashes of the e-mails that every later
layer uses instead, the batch that brought the row, and when it was loaded.
"""

from __future__ import annotations

RAW_TABLES: tuple[str, ...] = (
    "raw.commits",
    "raw.commit_quarantine",
    "raw.ingest_batches",
    "raw.commit_labels",
)
RAW_SCHEMA_DDL: tuple[str, ...] = (
    "CREATE SCHEMA IF NOT EXISTS raw",
    "CREATE SCHEMA IF NOT EXISTS analytics",
    """
    CREATE TABLE IF NOT EXISTS raw.commits (
        repo                          TEXT NOT NULL,
        commit_sha                    TEXT NOT NULL,
        parent_shas                   TEXT[],
        parent_count                  INTEGER NOT NULL,
        author_name                   TEXT NOT NULL,
        author_email                  TEXT NOT NULL,
        committer_name                TEXT,
        committer_email               TEXT,
        authored_at                   TIMESTAMPTZ NOT NULL,
        author_utc_offset_minutes     INTEGER,
        committed_at                  TIMESTAMPTZ NOT NULL,
        committer_utc_offset_minutes  INTEGER,
        message                       TEXT NOT NULL,
        files_changed                 INTEGER NOT NULL,
        lines_added                   INTEGER NOT NULL,
        lines_deleted                 INTEGER NOT NULL,
        author_email_hash             TEXT NOT NULL,
        committer_email_hash          TEXT,
        batch_id                      TEXT NOT NULL,
        loaded_at                     TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (repo, commit_sha)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS raw.commit_quarantine (
        batch_id        TEXT NOT NULL,
        source          TEXT NOT NULL,
        position        BIGINT NOT NULL,
        reason          TEXT NOT NULL,
        raw             TEXT NOT NULL,
        repo            TEXT,
        commit_sha      TEXT,
        loaded_at       TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (batch_id, position)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS raw.ingest_batches (
        batch_id          TEXT PRIMARY KEY,
        repo              TEXT NOT NULL,
        source            TEXT NOT NULL,
        ingest_date       TEXT NOT NULL,
        row_count         BIGINT NOT NULL,
        rows_inserted     BIGINT NOT NULL,
        quarantined_count BIGINT NOT NULL,
        checksum          TEXT NOT NULL,
        watermark_json    TEXT NOT NULL,
        loaded_at         TIMESTAMPTZ NOT NULL
    )
    """,
    # Human labels of commits (dataplatform.labels): one row per labelled row of a label file.
    # `commit_sha` and/or `message` identify the commit; label columns are NULL when the file
    # does not label that concept. Re-loading a file replaces its rows (same label_id).
    """
    CREATE TABLE IF NOT EXISTS raw.commit_labels (
        label_id              TEXT PRIMARY KEY,
        dataset               TEXT NOT NULL,
        source_file           TEXT NOT NULL,
        source_row            INTEGER NOT NULL,
        file_sha256           TEXT NOT NULL,
        labelling_protocol    TEXT NOT NULL,
        split                 TEXT NOT NULL,
        repo                  TEXT,
        commit_sha            TEXT,
        message               TEXT,
        is_corrective         BOOLEAN,
        is_adaptive           BOOLEAN,
        is_perfective         BOOLEAN,
        is_refactor           BOOLEAN,
        maintenance_activity  TEXT,
        project               TEXT,
        annotator_comment     TEXT,
        loaded_at             TIMESTAMPTZ NOT NULL
    )
    """,
)
