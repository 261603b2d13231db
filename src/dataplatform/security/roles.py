"""Login roles: how people and services get one of the NOLOGIN group roles of migration 0002.

A login role is a member of exactly one group role. Service logins (``*_service``) start every
session as the group role (``ALTER ROLE ... SET role``), so the objects they create belong to the
group role and the default privileges of migration 0006 apply (dbt's rebuilt marts get their
grants). People keep their own identity (audit trails name them) and inherit the group's
privileges. A department membership (``dept_<department>``) lets a login see that department's
rows when its session sets ``app.current_department``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dataplatform.security.rls import APPLICATION_ROLES, department_role

if TYPE_CHECKING:
    import psycopg


def scram_verifier(conn: psycopg.Connection[Any], role: str, password: str) -> str:
    """SCRAM-SHA-256 verifier of `password`, computed client-side by libpq.

    Only the verifier travels to the server, so the plaintext never reaches its statement log.
    """
    verifier = conn.pgconn.encrypt_password(
        password.encode("utf-8"), role.encode("utf-8"), b"scram-sha-256"
    )
    return verifier.decode("ascii")


def create_login(
    conn: psycopg.Connection[Any],
    name: str,
    password: str,
    group_role: str,
    *,
    departments: Sequence[str] = (),
) -> None:
    """Create LOGIN role `name` in `group_role` (+ department roles); run by the bootstrap owner."""
    from psycopg import sql

    if group_role not in APPLICATION_ROLES:
        raise ValueError(f"unknown group role {group_role!r}; one of {APPLICATION_ROLES}")
    ident = sql.Identifier(name)
    conn.execute(
        sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEROLE NOBYPASSRLS PASSWORD {}").format(
            ident, sql.Literal(scram_verifier(conn, name, password))
        )
    )
    conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(group_role), ident))
    if group_role.endswith("_service"):
        conn.execute(sql.SQL("ALTER ROLE {} SET role = {}").format(ident, sql.Literal(group_role)))
    if group_role == "mlflow_service":
        conn.execute(sql.SQL("ALTER ROLE {} SET search_path = registry").format(ident))
    for department in departments:
        conn.execute(
            sql.SQL("GRANT {} TO {}").format(sql.Identifier(department_role(department)), ident)
        )
