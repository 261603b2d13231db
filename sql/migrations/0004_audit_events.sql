-- Append-only log of platform actions (promotions, approvals, rollbacks, rotations, migrations).
-- Application roles get INSERT (and some SELECT) only; a trigger refuses UPDATE, DELETE and
-- TRUNCATE for everyone but a superuser who first disables it - which itself needs ownership.
CREATE TABLE IF NOT EXISTS audit.events (
    event_id     TEXT PRIMARY KEY,
    occurred_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    action       TEXT NOT NULL CHECK (action ~ '^[a-z][a-z_]*(\.[a-z][a-z_]*)+$'),
    subject      TEXT NOT NULL,
    actor        TEXT NOT NULL,
    db_user      TEXT NOT NULL DEFAULT session_user,
    details      JSONB NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS events_action_subject_idx
    ON audit.events (action, subject, occurred_at DESC);

CREATE OR REPLACE FUNCTION audit.refuse_change() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'audit.% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

DROP TRIGGER IF EXISTS events_append_only ON audit.events;
CREATE TRIGGER events_append_only
    BEFORE UPDATE OR DELETE ON audit.events
    FOR EACH ROW EXECUTE FUNCTION audit.refuse_change();
DROP TRIGGER IF EXISTS events_no_truncate ON audit.events;
CREATE TRIGGER events_no_truncate
    BEFORE TRUNCATE ON audit.events
    FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change();

-- schema_migrations (created by the migration runner) is append-only too.
DROP TRIGGER IF EXISTS schema_migrations_append_only ON audit.schema_migrations;
CREATE TRIGGER schema_migrations_append_only
    BEFORE UPDATE OR DELETE ON audit.schema_migrations
    FOR EACH ROW EXECUTE FUNCTION audit.refuse_change();

REVOKE ALL ON audit.events, audit.schema_migrations FROM PUBLIC;
GRANT USAGE ON SCHEMA audit TO
    platform_admin, data_engineer, data_analyst, pipeline_service, mlflow_service, dbt_service;
GRANT INSERT ON audit.events TO
    platform_admin, data_engineer, data_analyst, pipeline_service, mlflow_service, dbt_service;
GRANT SELECT ON audit.events, audit.schema_migrations TO platform_admin, data_engineer;
