-- Schemas of the platform. Owned by the bootstrap owner that runs migrations (never by an
-- application role, so no application role can drop or re-grant them).
CREATE SCHEMA IF NOT EXISTS raw;           -- loaded by pipeline_service; plaintext e-mails stay here
CREATE SCHEMA IF NOT EXISTS staging;       -- dbt views over raw
CREATE SCHEMA IF NOT EXISTS intermediate;  -- dbt views
CREATE SCHEMA IF NOT EXISTS analytics;     -- dbt marts, row-level security by department
CREATE SCHEMA IF NOT EXISTS monitoring;    -- prediction log, drift metrics
CREATE SCHEMA IF NOT EXISTS registry;      -- MLflow backend store (mlflow_service)
CREATE SCHEMA IF NOT EXISTS audit;         -- append-only platform actions, schema_migrations
CREATE SCHEMA IF NOT EXISTS security;      -- department mapping and RLS helpers

-- Nobody but the owner creates objects in `public` (the default before PostgreSQL 15).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
