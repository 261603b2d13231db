-- Row-level security of the analytics marts by department.
--
-- A repository belongs to one department (security.repository_departments, synced from
-- Settings.repo_departments by `dataplatform db migrate`). A session sees the rows of the
-- department named by the setting app.current_department, and only when its user is a member of
-- that department's role (security.departments.role_name, e.g. dept_web): the setting alone is
-- user-controlled (any session can SET it), the role membership is not. Unset, empty, unknown or
-- malformed settings, and departments the user is not a member of, give NULL -> 0 rows.

CREATE TABLE IF NOT EXISTS security.departments (
    department  TEXT PRIMARY KEY CHECK (department ~ '^[a-z][a-z0-9_]{0,39}$'),
    role_name   TEXT NOT NULL UNIQUE
);

CREATE TABLE IF NOT EXISTS security.repository_departments (
    repo        TEXT PRIMARY KEY,
    department  TEXT NOT NULL REFERENCES security.departments (department)
);

-- The department this session may see, or NULL (fail closed).
CREATE OR REPLACE FUNCTION security.current_department() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT d.department
    FROM security.departments AS d
    WHERE d.department = current_setting('app.current_department', true)
      AND coalesce(pg_has_role(current_user, to_regrole(d.role_name)::oid, 'MEMBER'), false)
$$;

-- Enable + force RLS on one table and (re)create its policies; idempotent. Called by the dbt
-- post-hook (macro secure_relation) and by the event trigger below, as the table's owner.
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
        -- A view checks RLS as its owner unless security_invoker: dbt_service (all rows) would
        -- otherwise leak every department through any view it owns.
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
    IF has_repo THEN
        -- Reads and writes alike: USING hides other departments' rows from SELECT, UPDATE and
        -- DELETE; WITH CHECK rejects inserting or moving a row into another department.
        EXECUTE format(
            'CREATE POLICY department_isolation ON %s AS PERMISSIVE FOR ALL TO PUBLIC '
            'USING (repo IN (SELECT rd.repo FROM security.repository_departments AS rd '
            '                WHERE rd.department = security.current_department())) '
            'WITH CHECK (repo IN (SELECT rd.repo FROM security.repository_departments AS rd '
            '                     WHERE rd.department = security.current_department()))',
            target);
    END IF;
    -- dbt builds and tests the marts from raw, which holds every department anyway.
    -- A table without a `repo` column gets only this policy: no other role sees a row.
    EXECUTE format(
        'CREATE POLICY transform_all_rows ON %s AS PERMISSIVE FOR ALL TO dbt_service '
        'USING (true) WITH CHECK (true)', target);
END
$$;

-- Belt and braces: any table or view created in `analytics` gets RLS in the creating
-- transaction, whoever creates it (dbt's table materialization builds a new table and renames
-- it into place, so policies on the old table are lost on every build). Event triggers need a
-- superuser; without one the dbt post-hook alone applies RLS and the catalog audit checks it.
CREATE OR REPLACE FUNCTION security.secure_new_analytics_relations() RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    created record;
BEGIN
    FOR created IN
        SELECT objid FROM pg_event_trigger_ddl_commands()
        WHERE schema_name = 'analytics'
          AND object_type IN ('table', 'view', 'materialized view')
    LOOP
        PERFORM security.apply_row_security(created.objid::regclass);
    END LOOP;
END
$$;

DO $$
BEGIN
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        DROP EVENT TRIGGER IF EXISTS secure_new_analytics_relations;
        CREATE EVENT TRIGGER secure_new_analytics_relations ON ddl_command_end
            WHEN TAG IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'CREATE VIEW',
                         'CREATE MATERIALIZED VIEW')
            EXECUTE FUNCTION security.secure_new_analytics_relations();
    ELSE
        RAISE NOTICE 'not a superuser: event trigger secure_new_analytics_relations skipped';
    END IF;
END
$$;

-- Tables already in analytics (e.g. built by dbt before this migration).
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

REVOKE ALL ON security.departments, security.repository_departments FROM PUBLIC;
REVOKE ALL ON FUNCTION security.current_department() FROM PUBLIC;
REVOKE ALL ON FUNCTION security.apply_row_security(regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION security.secure_new_analytics_relations() FROM PUBLIC;
-- Policy expressions run with the querying user's privileges: readers need the mapping.
GRANT USAGE ON SCHEMA security TO platform_admin, data_engineer, data_analyst, dbt_service;
GRANT SELECT ON security.departments, security.repository_departments
    TO platform_admin, data_engineer, data_analyst, dbt_service;
GRANT EXECUTE ON FUNCTION security.current_department()
    TO platform_admin, data_engineer, data_analyst, dbt_service;
GRANT EXECUTE ON FUNCTION security.apply_row_security(regclass) TO dbt_service;
GRANT EXECUTE ON FUNCTION security.secure_new_analytics_relations() TO dbt_service;
