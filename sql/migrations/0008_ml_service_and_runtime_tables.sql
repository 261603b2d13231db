-- The pipeline's own tables in a migrated database, and the role that trains, scores and
-- monitors models.
--
-- Until now these tables were created on first use by the code that writes them. Under the
-- least-privilege grants of 0006 no application login may create tables in raw, analytics or
-- registry, so a migrated database must already hold them. The columns are those of the
-- portable DDL in the code (serve/batch.py, serve/prediction_log.py, monitor/store.py,
-- registry/history.py, workers/queue.py); a test compares the two.
--
-- ml_service (not in design 3.3, which names no role for training): training reads every
-- department's feature rows (one model serves all departments), batch scoring writes
-- predictions for every repository, and the monitor reads both. pipeline_service may not read
-- analytics (design 3.3 and the RLS contract), dbt_service owns the marts and should not also
-- write model outputs, so the model stages get a role of their own:
--
--   role        raw  analytics                                monitoring             registry
--   ml_service  -    SELECT all rows; INSERT predictions      INSERT/SELECT          history
--                                                                                    INSERT/SELECT
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'ml_service') THEN
        BEGIN
            CREATE ROLE ml_service NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- created concurrently by another database's migration
        END;
    END IF;
    ALTER ROLE ml_service NOLOGIN NOSUPERUSER NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT;
    EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO ml_service', current_database());
END
$$;

-- analytics: model outputs ----------------------------------------------------------------
CREATE TABLE IF NOT EXISTS analytics.commit_predictions (
    commit_key      TEXT NOT NULL,
    repo            TEXT NOT NULL,
    commit_sha      TEXT NOT NULL,
    model_name      TEXT NOT NULL,
    model_version   INTEGER NOT NULL,
    semver          TEXT,
    alias           TEXT NOT NULL,
    predicted_class INTEGER NOT NULL,
    probability     DOUBLE PRECISION,
    scored_at       TIMESTAMPTZ NOT NULL,
    batch_id        TEXT NOT NULL,
    PRIMARY KEY (commit_key, model_name, model_version)
);

-- No `repo` column: under RLS only dbt_service and ml_service see its rows (bookkeeping).
CREATE TABLE IF NOT EXISTS analytics.commit_prediction_batches (
    batch_id            TEXT PRIMARY KEY,
    model_name          TEXT NOT NULL,
    model_version       INTEGER NOT NULL,
    semver              TEXT,
    alias               TEXT NOT NULL,
    source_table        TEXT NOT NULL,
    rows_scored         BIGINT NOT NULL,
    rows_already_scored BIGINT NOT NULL,
    rows_invalid        BIGINT NOT NULL,
    started_at          TIMESTAMPTZ NOT NULL,
    finished_at         TIMESTAMPTZ NOT NULL
);

-- monitoring -------------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS monitoring.prediction_log (
    request_id        TEXT NOT NULL,
    role              TEXT NOT NULL,
    predicted_at      TIMESTAMPTZ NOT NULL,
    route             TEXT NOT NULL,
    model_name        TEXT NOT NULL,
    model_version     TEXT NOT NULL,
    model_semver      TEXT,
    model_alias       TEXT NOT NULL,
    repo              TEXT,
    commit_sha        TEXT,
    predicted_class   BIGINT NOT NULL,
    probability       DOUBLE PRECISION NOT NULL,
    features_json     TEXT NOT NULL,
    PRIMARY KEY (request_id, role, model_version)
);

CREATE TABLE IF NOT EXISTS monitoring.monitor_runs (
    run_id          TEXT PRIMARY KEY,
    model_name      TEXT NOT NULL,
    model_version   TEXT,
    model_semver    TEXT,
    started_at      TIMESTAMPTZ NOT NULL,
    finished_at     TIMESTAMPTZ NOT NULL,
    window_rows     BIGINT NOT NULL,
    verdict         TEXT NOT NULL,
    window_severity TEXT NOT NULL,
    decision_json   TEXT NOT NULL,
    mlflow_run_id   TEXT,
    report_path     TEXT
);

CREATE TABLE IF NOT EXISTS monitoring.checks (
    run_id          TEXT NOT NULL,
    model_name      TEXT,
    model_version   TEXT,
    check_name      TEXT NOT NULL,
    kind            TEXT NOT NULL,
    severity        TEXT NOT NULL,
    value           DOUBLE PRECISION,
    threshold       DOUBLE PRECISION,
    detail          TEXT NOT NULL,
    checked_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (run_id, check_name)
);

CREATE TABLE IF NOT EXISTS monitoring.incidents (
    incident_id     TEXT PRIMARY KEY,
    model_name      TEXT NOT NULL,
    model_version   TEXT NOT NULL,
    detected_at     TIMESTAMPTZ NOT NULL,
    severity        TEXT NOT NULL,
    summary         TEXT NOT NULL,
    evidence_json   TEXT NOT NULL,
    action          TEXT NOT NULL,
    action_status   TEXT NOT NULL,
    rolled_back_to  TEXT,
    resolved_at     TIMESTAMPTZ,
    monitor_run_id  TEXT,
    notified        BOOLEAN NOT NULL,
    error           TEXT
);

-- registry: promotion history (MLflow's own tables live here too, owned by mlflow_service) --
CREATE TABLE IF NOT EXISTS registry.promotion_history (
    event_id           TEXT PRIMARY KEY,
    model_name         TEXT NOT NULL,
    version            INTEGER NOT NULL,
    semver             TEXT,
    from_alias         TEXT,
    to_alias           TEXT,
    action             TEXT NOT NULL
        CHECK (action IN ('promote', 'archive', 'rollback', 'blocked')),
    actor              TEXT NOT NULL,
    occurred_at        TIMESTAMPTZ NOT NULL,
    reason             TEXT,
    gate_results_json  TEXT
);

-- Append-only like audit.events (0004): the grants keep ml_service to INSERT, the trigger holds
-- for the table owner too.
DROP TRIGGER IF EXISTS promotion_history_append_only ON registry.promotion_history;
CREATE TRIGGER promotion_history_append_only
    BEFORE UPDATE OR DELETE ON registry.promotion_history
    FOR EACH ROW EXECUTE FUNCTION audit.refuse_change();
DROP TRIGGER IF EXISTS promotion_history_no_truncate ON registry.promotion_history;
CREATE TRIGGER promotion_history_no_truncate
    BEFORE TRUNCATE ON registry.promotion_history
    FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change();

-- raw: the scale-out ingestion queue (dataplatform.workers) ----------------------------------
CREATE TABLE IF NOT EXISTS raw.ingest_queue (
    item_id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source            TEXT NOT NULL UNIQUE,
    status            TEXT NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'running', 'done', 'failed')),
    attempts          INTEGER NOT NULL DEFAULT 0,
    lease_owner       TEXT,
    lease_expires_at  TIMESTAMPTZ,
    heartbeat_at      TIMESTAMPTZ,
    enqueued_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at        TIMESTAMPTZ,
    finished_at       TIMESTAMPTZ,
    rows_ingested     BIGINT,
    rows_inserted     BIGINT,
    batches_loaded    INTEGER,
    last_error        TEXT
);
CREATE INDEX IF NOT EXISTS ingest_queue_claimable
    ON raw.ingest_queue (enqueued_at, item_id) WHERE status IN ('pending', 'running');

-- Row-level security: apply_row_security (0005) gains a policy that lets ml_service see and
-- write every department's rows; which tables it may write is decided by the grants below.
CREATE OR REPLACE FUNCTION security.apply_row_security(target regclass) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    has_repo boolean;
    kind "char";
BEGIN
    SELECT c.relkind INTO kind FROM pg_class AS c WHERE c.oid = target;
    IF kind = 'v' THEN
        EXECUTE format('ALTER VIEW %s SET (security_invoker = true)', target);
        RETURN;
    ELSIF kind = 'm' THEN
        RAISE EXCEPTION 'materialized view % cannot have row-level security; use a table', target
            USING ERRCODE = 'feature_not_supported';
    ELSIF kind NOT IN ('r', 'p') THEN
        RETURN;
    END IF;
    SELECT EXISTS (
        SELECT 1 FROM pg_attribute AS a
        WHERE a.attrelid = target AND a.attname = 'repo' AND a.attnum > 0 AND NOT a.attisdropped
    ) INTO has_repo;
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', target);
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', target);
    EXECUTE format('DROP POLICY IF EXISTS department_isolation ON %s', target);
    EXECUTE format('DROP POLICY IF EXISTS transform_all_rows ON %s', target);
    EXECUTE format('DROP POLICY IF EXISTS models_all_rows ON %s', target);
    IF has_repo THEN
        EXECUTE format(
            'CREATE POLICY department_isolation ON %s AS PERMISSIVE FOR ALL TO PUBLIC '
            'USING (repo IN (SELECT rd.repo FROM security.repository_departments AS rd '
            '                WHERE rd.department = security.current_department())) '
            'WITH CHECK (repo IN (SELECT rd.repo FROM security.repository_departments AS rd '
            '                     WHERE rd.department = security.current_department()))',
            target);
    END IF;
    EXECUTE format(
        'CREATE POLICY transform_all_rows ON %s AS PERMISSIVE FOR ALL TO dbt_service '
        'USING (true) WITH CHECK (true)', target);
    EXECUTE format(
        'CREATE POLICY models_all_rows ON %s AS PERMISSIVE FOR ALL TO ml_service '
        'USING (true) WITH CHECK (true)', target);
END
$$;
REVOKE ALL ON FUNCTION security.apply_row_security(regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION security.apply_row_security(regclass) TO dbt_service;

DO $$
DECLARE
    rel regclass;
BEGIN
    FOR rel IN
        SELECT c.oid::regclass FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE n.nspname = 'analytics' AND c.relkind IN ('r', 'p', 'v')
    LOOP
        PERFORM security.apply_row_security(rel);
    END LOOP;
END
$$;

-- Grants -----------------------------------------------------------------------------------
-- The department policy's expression runs for every role, ml_service included.
GRANT USAGE ON SCHEMA security TO ml_service;
GRANT SELECT ON security.departments, security.repository_departments TO ml_service;
GRANT EXECUTE ON FUNCTION security.current_department() TO ml_service;

GRANT USAGE ON SCHEMA analytics TO ml_service;
GRANT SELECT ON ALL TABLES IN SCHEMA analytics TO ml_service;
ALTER DEFAULT PRIVILEGES FOR ROLE dbt_service IN SCHEMA analytics
    GRANT SELECT ON TABLES TO ml_service;
-- Scoring is insert-only (ON CONFLICT DO NOTHING); nothing rewrites a prediction.
GRANT INSERT ON analytics.commit_predictions, analytics.commit_prediction_batches TO ml_service;
GRANT SELECT ON analytics.commit_predictions, analytics.commit_prediction_batches
    TO dbt_service, data_engineer, data_analyst, platform_admin;

-- Serving (pipeline_service) appends the prediction log; quality checks of ingest batches run
-- as pipeline_service, model monitoring as ml_service. Monitoring tables are append-only.
GRANT USAGE ON SCHEMA monitoring TO ml_service;
-- 0006 let the serving layer create its log table; the table exists now, so nothing may.
REVOKE CREATE ON SCHEMA monitoring FROM pipeline_service;
GRANT SELECT, INSERT ON monitoring.prediction_log TO pipeline_service;
GRANT SELECT ON monitoring.prediction_log TO ml_service;
GRANT SELECT, INSERT ON monitoring.checks TO pipeline_service, ml_service;
GRANT SELECT, INSERT ON monitoring.monitor_runs, monitoring.incidents TO ml_service;
GRANT SELECT ON ALL TABLES IN SCHEMA monitoring TO data_engineer, platform_admin;

GRANT USAGE ON SCHEMA registry TO ml_service, data_engineer, platform_admin;
GRANT SELECT, INSERT ON registry.promotion_history TO ml_service;
GRANT SELECT ON registry.promotion_history TO data_engineer, platform_admin;

GRANT SELECT, INSERT, UPDATE, DELETE ON raw.ingest_queue TO pipeline_service;

GRANT USAGE ON SCHEMA audit TO ml_service;
GRANT INSERT ON audit.events TO ml_service;
