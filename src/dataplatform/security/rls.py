"""Row-level security by department: the repository → department mapping and a catalog audit.

The policies themselves live in SQL (migration 0005: ``security.apply_row_security``, applied by
the dbt post-hook ``secure_relation`` and an event trigger). Here:

* `sync_departments` writes ``Settings.repo_departments`` into ``security.departments`` /
  ``security.repository_departments`` and creates one NOLOGIN role per department
  (``dept_<department>``) whose members may select that department.
* `audit_catalog` reads the catalog and returns every finding that breaks the RLS contract.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

DEPARTMENT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
REPO_NAME = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
APPLICATION_ROLES: tuple[str, ...] = (
    "platform_admin",
    "data_engineer",
    "data_analyst",
    "pipeline_service",
    "mlflow_service",
    "dbt_service",
    "ml_service",  # migration 0008: training, batch scoring and monitoring
)
RLS_SCHEMAS: tuple[str, ...] = ("analytics",)


class DepartmentConfigError(ValueError):
    """The repository → department mapping is malformed."""


def department_role(department: str) -> str:
    """Name of the NOLOGIN role whose members may see `department` (``dept_<department>``)."""
    return f"dept_{department}"


def validate_mapping(mapping: Mapping[str, str]) -> dict[str, str]:
    """`mapping` checked (owner/name repos, lower-case snake department names); pure."""
    bad = [
        f"{repo!r} -> {dept!r}"
        for repo, dept in mapping.items()
        if not REPO_NAME.match(repo) or not DEPARTMENT_NAME.match(dept)
    ]
    if bad:
        raise DepartmentConfigError(
            "repo_departments needs owner/name repositories and departments matching "
            f"{DEPARTMENT_NAME.pattern}: " + ", ".join(sorted(bad))
        )
    return dict(mapping)


def sync_departments(conn: psycopg.Connection[Any], mapping: Mapping[str, str]) -> int:
    """Make the database mapping equal `mapping`; returns the number of mapped repositories.

    Run inside a transaction by a role that may create roles (the migration owner). Departments
    no longer mapped keep their row and role (memberships may still be granted) but no repo.
    """
    from psycopg import sql

    checked = validate_mapping(mapping)
    for department in sorted(set(checked.values())):
        role = department_role(department)
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
        conn.execute(
            "INSERT INTO security.departments (department, role_name) VALUES (%s, %s) "
            "ON CONFLICT (department) DO UPDATE SET role_name = EXCLUDED.role_name",
            [department, role],
        )
    conn.execute(
        "DELETE FROM security.repository_departments WHERE NOT (repo = ANY(%s))",
        [sorted(checked)],
    )
    for repo, department in sorted(checked.items()):
        conn.execute(
            "INSERT INTO security.repository_departments (repo, department) VALUES (%s, %s) "
            "ON CONFLICT (repo) DO UPDATE SET department = EXCLUDED.department",
            [repo, department],
        )
    return len(checked)


@dataclass(frozen=True, slots=True)
class Finding:
    """One breach of the RLS contract found in the catalog."""

    check: str  # rls_not_forced, no_department_policy, bypassrls_role, ...
    object_name: str
    detail: str

    def __str__(self) -> str:
        return f"{self.check}: {self.object_name} ({self.detail})"


_TABLES_WITHOUT_FORCED_RLS = """
    SELECT format('%%I.%%I', n.nspname, c.relname), c.relrowsecurity, c.relforcerowsecurity
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = ANY(%s) AND c.relkind IN ('r', 'p')
      AND NOT (c.relrowsecurity AND c.relforcerowsecurity)
    ORDER BY 1
"""
_REPO_TABLES_WITHOUT_POLICY = """
    SELECT format('%%I.%%I', n.nspname, c.relname)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = ANY(%s) AND c.relkind IN ('r', 'p')
      AND EXISTS (SELECT 1 FROM pg_attribute a
                  WHERE a.attrelid = c.oid AND a.attname = 'repo' AND NOT a.attisdropped)
      AND NOT EXISTS (SELECT 1 FROM pg_policy p
                      WHERE p.polrelid = c.oid AND p.polname = 'department_isolation')
    ORDER BY 1
"""
# Permissive policies other than ours that could widen access (e.g. USING (true) TO PUBLIC).
# Ours are known by name AND grantee: the department policy applies to PUBLIC, the all-rows
# policies only to dbt_service (builds the marts) and ml_service (trains, scores; 0008).
_FOREIGN_POLICIES = """
    SELECT format('%%I.%%I', n.nspname, c.relname), p.polname
    FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = ANY(%s) AND p.polpermissive
      AND NOT (p.polname = 'department_isolation' AND p.polroles = '{0}'::oid[])
      AND NOT (p.polname = 'transform_all_rows'
               AND p.polroles = ARRAY[to_regrole('dbt_service')::oid])
      AND NOT (p.polname = 'models_all_rows'
               AND p.polroles = ARRAY[to_regrole('ml_service')::oid])
    ORDER BY 1, 2
"""
_VIEWS_NOT_INVOKER = """
    SELECT format('%%I.%%I', n.nspname, c.relname)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = ANY(%s) AND c.relkind = 'v'
      AND NOT coalesce('security_invoker=true' = ANY(c.reloptions)
                       OR 'security_invoker=on' = ANY(c.reloptions), false)
    ORDER BY 1
"""
_MATVIEWS = """
    SELECT format('%%I.%%I', n.nspname, c.relname)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = ANY(%s) AND c.relkind = 'm'
    ORDER BY 1
"""
# Application roles and every role that is a member of one (login users), recursively.
_PRIVILEGED_APP_ROLES = """
    WITH RECURSIVE app(oid) AS (
        SELECT oid FROM pg_roles WHERE rolname = ANY(%s)
        UNION
        SELECT m.member FROM pg_auth_members m JOIN app ON m.roleid = app.oid
    )
    SELECT r.rolname, r.rolbypassrls, r.rolsuper
    FROM pg_roles r JOIN app ON app.oid = r.oid
    WHERE r.rolbypassrls OR r.rolsuper
    ORDER BY 1
"""
_DEFINER_WITHOUT_SEARCH_PATH = r"""
    SELECT format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid))
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE p.prosecdef
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND NOT EXISTS (SELECT 1 FROM unnest(coalesce(p.proconfig, '{}')) AS setting
                      WHERE setting LIKE 'search\_path=%')
    ORDER BY 1
"""


def audit_catalog(
    conn: psycopg.Connection[Any],
    *,
    schemas: Sequence[str] = RLS_SCHEMAS,
    roles: Sequence[str] = APPLICATION_ROLES,
) -> list[Finding]:
    """Every breach of the RLS contract in the current database; [] when all is well.

    Checks: each table in `schemas` has RLS enabled and forced, and one with a ``repo`` column
    has the department policy; no other permissive policy there; views there are
    ``security_invoker`` (else they read as their owner); no materialized views there (RLS does
    not apply to them); no application role or member of one is SUPERUSER or BYPASSRLS; no
    SECURITY DEFINER function outside the system schemas lacks a pinned search_path.
    """
    findings: list[Finding] = []
    schema_list = list(schemas)
    for name, enabled, _forced in conn.execute(_TABLES_WITHOUT_FORCED_RLS, [schema_list]):
        state = "RLS disabled" if not enabled else "RLS enabled but not forced"
        findings.append(Finding("rls_not_forced", name, state))
    for (name,) in conn.execute(_REPO_TABLES_WITHOUT_POLICY, [schema_list]):
        findings.append(Finding("no_department_policy", name, "has repo but no department policy"))
    for name, policy in conn.execute(_FOREIGN_POLICIES, [schema_list]):
        findings.append(Finding("unexpected_policy", name, f"permissive policy {policy}"))
    for (name,) in conn.execute(_VIEWS_NOT_INVOKER, [schema_list]):
        findings.append(Finding("view_not_security_invoker", name, "reads with owner's rights"))
    for (name,) in conn.execute(_MATVIEWS, [schema_list]):
        findings.append(Finding("materialized_view", name, "RLS does not apply"))
    for name, bypass, superuser in conn.execute(_PRIVILEGED_APP_ROLES, [list(roles)]):
        what = " and ".join(w for w, on in (("SUPERUSER", superuser), ("BYPASSRLS", bypass)) if on)
        findings.append(Finding("privileged_application_role", name, what))
    for (name,) in conn.execute(_DEFINER_WITHOUT_SEARCH_PATH):
        findings.append(Finding("definer_without_search_path", name, "SECURITY DEFINER"))
    return findings
