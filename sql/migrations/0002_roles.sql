-- Group roles of design 3.3. All NOLOGIN: people and services log in as their own LOGIN roles
-- that are granted one of these (see dataplatform.security.roles.create_login). Roles are
-- cluster-wide, so creation tolerates a role made by another database's migrations.
--
-- platform_admin is deliberately NOT a superuser (design 3.3 says SUPERUSER): a superuser ignores
-- row-level security, can disable the audit trigger and run OS commands (COPY ... PROGRAM), so a
-- leaked admin credential would be a full compromise. DDL, role management and password rotation
-- run with the bootstrap owner's credential, used only by the migrate / rotate jobs.
-- No CREATEROLE either: on PostgreSQL 15 CREATEROLE can grant pg_execute_server_program.
DO $$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY[
        'platform_admin', 'data_engineer', 'data_analyst',
        'pipeline_service', 'mlflow_service', 'dbt_service'
    ] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = role_name) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', role_name);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- created concurrently by another database's migration
            END;
        END IF;
        -- Attributes are set explicitly even for an existing role: nothing may bypass RLS.
        EXECUTE format(
            'ALTER ROLE %I NOLOGIN NOSUPERUSER NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT',
            role_name
        );
    END LOOP;
END
$$;

-- Design 3.3: data engineers may create databases (sandboxes).
ALTER ROLE data_engineer CREATEDB;
