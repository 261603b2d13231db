-- The raw layer (same columns as dataplatform.adapters.ddl.RAW_SCHEMA_DDL; a test compares them).
-- Created here so the tables belong to the bootstrap owner and pipeline_service only gets DML.
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
);

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
);

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
);
