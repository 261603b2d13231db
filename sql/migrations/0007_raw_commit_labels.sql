-- Human labels of commits (dataplatform.labels); same columns as adapters/ddl.py.
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
);
-- Default privileges of 0006 cover this when the same owner runs migrations; explicit anyway.
GRANT SELECT, INSERT, UPDATE, DELETE ON raw.commit_labels TO pipeline_service;
GRANT SELECT ON raw.commit_labels TO dbt_service;
