-- Least-privilege grants of design 3.3, plus default privileges so that tables created later
-- (by dbt on every build, by later migrations) get the same grants without a manual step.
--
--   role              raw            staging/intermediate  analytics (RLS)        monitoring
--   platform_admin    ingest_batches -                      rows of its department SELECT
--   data_engineer     -              SELECT                 SELECT + DML (RLS)     SELECT
--   data_analyst      -              -                      SELECT (RLS)           -
--   pipeline_service  SELECT + DML   -                      - (cannot read)        INSERT/SELECT, CREATE
--   mlflow_service    -              -                      -                      -   (owns registry)
--   dbt_service       SELECT         CREATE (owner)         CREATE (owner)         -
-- Plaintext e-mails live only in raw, which humans do not read.

-- Database: nobody connects by default; TEMP only where the code needs temp tables.
DO $$
BEGIN
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format(
        'GRANT CONNECT ON DATABASE %I TO platform_admin, data_engineer, data_analyst, '
        'pipeline_service, mlflow_service, dbt_service', current_database());
    EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO data_engineer, pipeline_service, dbt_service',
                   current_database());
    -- Design 3.3 grants data_engineer ALL on the database: CONNECT, TEMPORARY and CREATE (their
    -- own sandbox schemas); it confers nothing on the platform's schemas.
    EXECUTE format('GRANT CREATE ON DATABASE %I TO data_engineer', current_database());
END
$$;

-- raw: pipeline_service loads (design: INSERT, UPDATE, DELETE), dbt_service reads.
GRANT USAGE ON SCHEMA raw TO pipeline_service, dbt_service, platform_admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA raw TO pipeline_service;
GRANT SELECT ON ALL TABLES IN SCHEMA raw TO dbt_service;
GRANT SELECT ON raw.ingest_batches TO platform_admin;  -- load bookkeeping, no personal data
ALTER DEFAULT PRIVILEGES IN SCHEMA raw
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO pipeline_service;
ALTER DEFAULT PRIVILEGES IN SCHEMA raw GRANT SELECT ON TABLES TO dbt_service;

-- staging / intermediate: dbt's views; engineers may read them (e-mails are hashed there).
GRANT USAGE, CREATE ON SCHEMA staging, intermediate TO dbt_service;
GRANT USAGE ON SCHEMA staging, intermediate TO data_engineer;
ALTER DEFAULT PRIVILEGES FOR ROLE dbt_service IN SCHEMA staging, intermediate
    GRANT SELECT ON TABLES TO data_engineer;

-- analytics: design "GRANT ALL ON SCHEMA analytics TO dbt_service"; readers see their
-- department only (0005). pipeline_service gets nothing here.
GRANT USAGE, CREATE ON SCHEMA analytics TO dbt_service;
GRANT USAGE ON SCHEMA analytics TO data_analyst, data_engineer, platform_admin;
GRANT SELECT ON ALL TABLES IN SCHEMA analytics TO data_analyst, data_engineer, platform_admin;
GRANT INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA analytics TO data_engineer;
-- Login roles of dbt_service run as dbt_service (ALTER ROLE ... SET role), so the tables dbt
-- creates are owned by dbt_service and pick these up at creation, on every rebuild.
ALTER DEFAULT PRIVILEGES FOR ROLE dbt_service IN SCHEMA analytics
    GRANT SELECT ON TABLES TO data_analyst, data_engineer, platform_admin;
ALTER DEFAULT PRIVILEGES FOR ROLE dbt_service IN SCHEMA analytics
    GRANT INSERT, UPDATE, DELETE ON TABLES TO data_engineer;

-- monitoring: the serving layer (pipeline_service) creates and appends its logs.
GRANT USAGE, CREATE ON SCHEMA monitoring TO pipeline_service;
GRANT USAGE ON SCHEMA monitoring TO data_engineer, platform_admin;
ALTER DEFAULT PRIVILEGES FOR ROLE pipeline_service IN SCHEMA monitoring
    GRANT SELECT ON TABLES TO data_engineer, platform_admin;

-- registry: MLflow's backend store (its login role sets search_path = registry).
GRANT USAGE, CREATE ON SCHEMA registry TO mlflow_service;

-- Functions created later are not executable by everyone by default.
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
