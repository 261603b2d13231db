"""The catalog audit: clean on a migrated database, and it finds each kind of breach."""

from __future__ import annotations

import psycopg
import pytest
from security_world import Cluster

from dataplatform.security.rls import Finding, audit_catalog

pytestmark = pytest.mark.postgres


def checks(findings: list[Finding]) -> set[tuple[str, str]]:
    return {(f.check, f.object_name) for f in findings}


def test_migrated_database_has_no_findings(migrated: Cluster) -> None:
    with psycopg.connect(migrated.admin) as conn:
        assert audit_catalog(conn) == []


def test_audit_finds_each_breach(migrated: Cluster) -> None:
    login = migrated.login("data_analyst")
    with psycopg.connect(migrated.admin, autocommit=True) as conn:
        conn.execute("SET ROLE dbt_service")
        conn.execute("CREATE TABLE analytics.t_unforced (repo text)")
        conn.execute("CREATE TABLE analytics.t_nopolicy (repo text)")
        conn.execute("CREATE TABLE analytics.t_open (repo text)")
        conn.execute("CREATE VIEW analytics.v_owner AS SELECT * FROM analytics.t_open")
        conn.execute("RESET ROLE")
        # The event trigger secured them; now break each one as a careless owner could.
        conn.execute("ALTER TABLE analytics.t_unforced NO FORCE ROW LEVEL SECURITY")
        conn.execute("DROP POLICY department_isolation ON analytics.t_nopolicy")
        conn.execute("CREATE POLICY everyone ON analytics.t_open FOR SELECT USING (true)")
        conn.execute("ALTER VIEW analytics.v_owner SET (security_invoker = false)")
        # An unsecured materialized view cannot even be created in analytics...
        with pytest.raises(psycopg.errors.FeatureNotSupported):
            conn.execute("CREATE MATERIALIZED VIEW analytics.mv AS SELECT 1 AS a")
        # ...unless it is moved in from elsewhere.
        conn.execute("CREATE MATERIALIZED VIEW public.mv AS SELECT 1 AS a")
        conn.execute("ALTER MATERIALIZED VIEW public.mv SET SCHEMA analytics")
        conn.execute(f'ALTER ROLE "{login}" BYPASSRLS')
        conn.execute(
            "CREATE FUNCTION public.definer_open() RETURNS int LANGUAGE sql SECURITY DEFINER "
            "AS 'SELECT 1'"
        )
        conn.execute(
            "CREATE FUNCTION public.definer_pinned() RETURNS int LANGUAGE sql SECURITY DEFINER "
            "SET search_path = pg_catalog AS 'SELECT 1'"
        )
        found = checks(audit_catalog(conn))
    assert found == {
        ("rls_not_forced", "analytics.t_unforced"),
        ("no_department_policy", "analytics.t_nopolicy"),
        ("unexpected_policy", "analytics.t_open"),
        ("view_not_security_invoker", "analytics.v_owner"),
        ("materialized_view", "analytics.mv"),
        ("privileged_application_role", login),
        ("definer_without_search_path", "public.definer_open()"),
    }


def test_no_application_role_is_superuser_or_bypasses_rls(migrated: Cluster) -> None:
    with psycopg.connect(migrated.admin) as conn:
        rows = conn.execute(
            "SELECT rolname, rolsuper, rolbypassrls, rolcanlogin, rolcreaterole FROM pg_roles "
            "WHERE rolname IN ('platform_admin', 'data_engineer', 'data_analyst', "
            "'pipeline_service', 'mlflow_service', 'dbt_service')"
        ).fetchall()
    assert len(rows) == 6
    assert all(r[1:] == (False, False, False, False) for r in rows), rows
