"""Row-level security on the dbt-built analytics marts, in the style of PostgreSQL's rowsecurity
regression tests: every reading role x many query shapes, write attempts, bad settings, catalog.

World (conftest `secured`): encode/httpx is department `web`, psf/requests department
`platform`; 300 real commits each; the department-scoped logins are members of `dept_web` only.
Every shape is run twice: for the own repository it must return rows (so the shape can fail),
for the other department's repository it must return none.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import errors, sql
from security_world import OTHER_REPO, OWN_REPO, Secured

from dataplatform.security.rls import audit_catalog

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SCOPED = ("analyst", "engineer", "admin")  # department-scoped readers of analytics
NO_ANALYTICS = ("pipeline", "mlflow")  # may not read analytics at all

# Each shape counts the rows of repository %(repo)s that the session can see.
SHAPES: dict[str, str] = {
    "plain_select": "SELECT count(*) FROM analytics.fct_commits WHERE repo = %(repo)s",
    "table_stmt": "SELECT count(*) FROM (TABLE analytics.commit_features) t WHERE repo = %(repo)s",
    "join": """
        SELECT count(*) FROM analytics.fct_commits f
        JOIN analytics.commit_features c ON c.commit_key = f.commit_key
        JOIN analytics.dim_repositories d ON d.repo = f.repo
        WHERE f.repo = %(repo)s""",
    "left_join_from_unprotected": """
        SELECT count(c.commit_key) FROM (VALUES (%(repo)s)) AS v(repo)
        LEFT JOIN analytics.commit_features c ON c.repo = v.repo""",
    "aggregate": """
        SELECT coalesce(sum(n), 0) FROM (
            SELECT repo, count(*) AS n FROM analytics.commit_features GROUP BY repo
        ) g WHERE repo = %(repo)s""",
    "aggregate_dim": """
        SELECT count(*) FROM analytics.dim_repositories
        WHERE repo = %(repo)s AND commit_count > 0""",
    "view": "SELECT count(*) FROM analytics.v_commits WHERE repo = %(repo)s",
    "function": "SELECT public.count_commits(%(repo)s)",
    "subquery_in": """
        SELECT count(*) FROM analytics.commit_features WHERE commit_key IN (
            SELECT commit_key FROM analytics.fct_commits WHERE repo = %(repo)s)""",
    "scalar_subquery": """
        SELECT (SELECT count(*) FROM analytics.fct_commits f WHERE f.repo = v.repo)
        FROM (VALUES (%(repo)s)) AS v(repo)""",
    "cte": """
        WITH picked AS (SELECT * FROM analytics.fct_commits WHERE repo = %(repo)s)
        SELECT count(*) FROM picked""",
    "recursive_cte": """
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2)
        SELECT count(*) FROM n CROSS JOIN analytics.fct_commits f WHERE f.repo = %(repo)s""",
    "window": """
        SELECT count(*) FROM (
            SELECT repo, row_number() OVER (PARTITION BY repo ORDER BY authored_at) AS rn
            FROM analytics.fct_commits
        ) w WHERE repo = %(repo)s""",
    "exists": """
        SELECT count(*) FROM (VALUES (%(repo)s)) AS v(repo)
        WHERE EXISTS (SELECT 1 FROM analytics.fct_commits f WHERE f.repo = v.repo)""",
    "union": """
        SELECT count(*) FROM (
            SELECT repo FROM analytics.fct_commits UNION ALL
            SELECT repo FROM analytics.commit_features UNION
            SELECT repo FROM analytics.dim_repositories
        ) u WHERE repo = %(repo)s""",
    "lateral": """
        SELECT count(x.commit_key) FROM (VALUES (%(repo)s)) AS v(repo),
        LATERAL (SELECT commit_key FROM analytics.fct_commits f WHERE f.repo = v.repo) x""",
    "order_limit": """
        SELECT count(*) FROM (
            SELECT * FROM analytics.fct_commits WHERE repo = %(repo)s
            ORDER BY lines_added DESC LIMIT 50) t""",
    "like_pattern": """
        SELECT count(*) FROM analytics.fct_commits
        WHERE repo LIKE split_part(%(repo)s, '/', 1) || '%%'""",
}


@pytest.fixture(scope="module")
def shapes_world(secured: Secured) -> Secured:
    """Adds a view (made by dbt_service, as dbt would) and a SQL function used by the shapes."""
    with psycopg.connect(secured.cluster.admin, autocommit=True) as conn:
        conn.execute("SET ROLE dbt_service")
        conn.execute("CREATE VIEW analytics.v_commits AS SELECT * FROM analytics.fct_commits")
        conn.execute("RESET ROLE")
        conn.execute(
            "GRANT SELECT ON analytics.v_commits TO data_analyst, data_engineer, platform_admin"
        )
        conn.execute(
            """
            CREATE FUNCTION public.count_commits(wanted text) RETURNS bigint
            LANGUAGE sql STABLE SET search_path = pg_catalog
            AS $$ SELECT count(*) FROM analytics.fct_commits WHERE repo = wanted $$
            """
        )
        conn.execute("GRANT EXECUTE ON FUNCTION public.count_commits(text) TO PUBLIC")
        # PostgreSQL's rowsecurity tests: a non-leakproof function that reports what it sees.
        conn.execute(
            """
            CREATE FUNCTION public.f_leak(value text) RETURNS boolean
            LANGUAGE plpgsql COST 0.0000001 SET search_path = pg_catalog
            AS $$ BEGIN RAISE NOTICE 'f_leak => %', value; RETURN true; END $$
            """
        )
        conn.execute("GRANT EXECUTE ON FUNCTION public.f_leak(text) TO PUBLIC")
    return secured


def connect(world: Secured, who: str, department: str | None = "web") -> psycopg.Connection[Any]:
    conn = psycopg.connect(world.cluster.conninfo(world.users[who]), autocommit=True)
    if department is not None:
        conn.execute("SELECT set_config('app.current_department', %s, false)", [department])
    return conn


def count(conn: psycopg.Connection[Any], query: str, repo: str) -> int:
    row = conn.execute(query, {"repo": repo}).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize("who", SCOPED)
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_each_role_and_shape_sees_only_its_department(
    shapes_world: Secured, who: str, shape: str
) -> None:
    with connect(shapes_world, who) as conn:
        assert count(conn, SHAPES[shape], OWN_REPO) > 0  # the shape does reach the data
        assert count(conn, SHAPES[shape], OTHER_REPO) == 0


@pytest.mark.parametrize("who", SCOPED)
def test_copy_to_returns_only_own_department(shapes_world: Secured, who: str) -> None:
    with connect(shapes_world, who) as conn, conn.cursor() as cur:
        for statement in (
            "COPY analytics.fct_commits (repo) TO STDOUT",
            "COPY (SELECT repo FROM analytics.commit_features) TO STDOUT",
        ):
            with cur.copy(statement) as copy:
                repos = {row[0] for row in copy.rows()}
            assert repos == {OWN_REPO}


@pytest.mark.parametrize("who", SCOPED)
def test_leaky_function_never_sees_other_rows(shapes_world: Secured, who: str) -> None:
    notices: list[str] = []
    with connect(shapes_world, who) as conn:
        conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
        conn.execute("SELECT * FROM analytics.dim_repositories WHERE public.f_leak(repo)")
        conn.execute(
            "SELECT * FROM analytics.fct_commits WHERE public.f_leak(repo) AND repo = %s",
            [OTHER_REPO],
        )
    assert notices  # the function ran on the visible rows
    assert not [n for n in notices if OTHER_REPO in n]


def test_dbt_service_reads_all_departments_and_nobody_else(shapes_world: Secured) -> None:
    """The documented exception: dbt builds from raw (all departments) and tests the marts."""
    with connect(shapes_world, "dbt", department=None) as conn:
        assert count(conn, SHAPES["plain_select"], OTHER_REPO) == 300
        assert count(conn, SHAPES["plain_select"], OWN_REPO) == 300
    # ...and that never leaks through dbt_service's views: they run as the invoker.
    with connect(shapes_world, "analyst") as conn:
        assert count(conn, SHAPES["view"], OTHER_REPO) == 0


@pytest.mark.parametrize("who", NO_ANALYTICS)
@pytest.mark.parametrize("shape", ["plain_select", "join", "view", "function", "cte"])
def test_service_roles_cannot_read_analytics(shapes_world: Secured, who: str, shape: str) -> None:
    with connect(shapes_world, who) as conn, pytest.raises(errors.InsufficientPrivilege):
        count(conn, SHAPES[shape], OWN_REPO)


BAD_SETTINGS = [
    None,  # never set
    "",
    "WEB",
    "web ",
    " web",
    "web' OR '1'='1",
    "web,platform",
    "%",
    "*",
    "dept_web",
    "platform",  # a real department the user is not a member of
    "x" * 500,
]


@pytest.mark.parametrize("setting", BAD_SETTINGS, ids=repr)
@pytest.mark.parametrize("who", ["analyst", "engineer"])
def test_unset_empty_malformed_or_foreign_department_reads_nothing(
    shapes_world: Secured, who: str, setting: str | None
) -> None:
    with connect(shapes_world, who, department=setting) as conn:
        for table in ("fct_commits", "commit_features", "dim_repositories", "v_commits"):
            query = sql.SQL("SELECT count(*) FROM analytics.{}").format(sql.Identifier(table))
            row = conn.execute(query).fetchone()
            assert row == (0,), (table, setting)


def test_reset_after_set_reads_nothing(shapes_world: Secured) -> None:
    with connect(shapes_world, "analyst") as conn:
        assert count(conn, SHAPES["plain_select"], OWN_REPO) == 300
        conn.execute("RESET app.current_department")
        assert count(conn, SHAPES["plain_select"], OWN_REPO) == 0


def test_member_without_department_role_reads_nothing(shapes_world: Secured) -> None:
    with connect(shapes_world, "analyst_nodept") as conn:
        assert count(conn, "SELECT count(*) FROM analytics.fct_commits", OWN_REPO) == 0


@pytest.fixture
def engineer(shapes_world: Secured) -> Iterator[psycopg.Connection[Any]]:
    """A data_engineer session of department web inside a transaction that is rolled back."""
    conn = connect(shapes_world, "engineer")
    conn.autocommit = False
    try:
        yield conn
    finally:
        conn.rollback()
        conn.close()


def test_insert_into_other_department_is_rejected(engineer: psycopg.Connection[Any]) -> None:
    with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
        engineer.execute(
            "INSERT INTO analytics.dim_repositories (repo, commit_count) VALUES (%s, 1)",
            [OTHER_REPO],
        )


def test_insert_into_own_department_is_allowed(engineer: psycopg.Connection[Any]) -> None:
    engineer.execute(
        "INSERT INTO analytics.dim_repositories (repo, commit_count) VALUES (%s, 1)", [OWN_REPO]
    )


def test_update_and_delete_of_other_department_touch_nothing(
    engineer: psycopg.Connection[Any],
) -> None:
    updated = engineer.execute(
        "UPDATE analytics.fct_commits SET lines_added = 0 WHERE repo = %s", [OTHER_REPO]
    )
    assert updated.rowcount == 0
    deleted = engineer.execute(
        "DELETE FROM analytics.commit_features WHERE repo = %s", [OTHER_REPO]
    )
    assert deleted.rowcount == 0
    everything = engineer.execute("UPDATE analytics.fct_commits SET lines_added = lines_added")
    assert everything.rowcount == 300  # own rows only


def test_moving_a_row_into_other_department_is_rejected(engineer: psycopg.Connection[Any]) -> None:
    with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
        engineer.execute(
            "UPDATE analytics.fct_commits SET repo = %s WHERE repo = %s", [OTHER_REPO, OWN_REPO]
        )


def test_copy_from_into_analytics_is_refused(engineer: psycopg.Connection[Any]) -> None:
    with (
        pytest.raises(psycopg.errors.FeatureNotSupported, match="row-level security"),
        engineer.cursor().copy("COPY analytics.dim_repositories (repo) FROM STDIN") as copy,
    ):
        copy.write_row([OTHER_REPO])


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO analytics.dim_repositories (repo, commit_count) VALUES ('encode/httpx', 1)",
        "UPDATE analytics.fct_commits SET lines_added = 0",
        "DELETE FROM analytics.commit_features",
        "TRUNCATE analytics.fct_commits",
        "CREATE TABLE analytics.scratch (repo text)",
        "DROP TABLE analytics.fct_commits",
    ],
)
def test_data_analyst_cannot_write(shapes_world: Secured, statement: str) -> None:
    with connect(shapes_world, "analyst") as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute(statement)


def test_pipeline_service_loads_raw_but_analysts_cannot_read_it(shapes_world: Secured) -> None:
    with connect(shapes_world, "pipeline", department=None) as conn:
        row = conn.execute("SELECT count(*) FROM raw.commits").fetchone()
        assert row == (600,)
    for who in ("analyst", "engineer", "mlflow"):
        with connect(shapes_world, who) as conn, pytest.raises(errors.InsufficientPrivilege):
            conn.execute("SELECT author_email FROM raw.commits LIMIT 1")


def policy_state(conn: psycopg.Connection[Any]) -> dict[str, tuple[Any, ...]]:
    rows = conn.execute(
        """
        SELECT c.relname, c.oid, c.relrowsecurity, c.relforcerowsecurity,
               (SELECT array_agg(polname ORDER BY polname) FROM pg_policy WHERE polrelid = c.oid),
               has_table_privilege('data_analyst', c.oid, 'SELECT')
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'analytics' AND c.relkind = 'r'
        """
    ).fetchall()
    return {r[0]: tuple(r[1:]) for r in rows}


def test_dbt_rebuild_keeps_rls_grants_and_passes_the_catalog_audit(shapes_world: Secured) -> None:
    with psycopg.connect(shapes_world.cluster.admin, autocommit=True) as conn:
        before = policy_state(conn)
        # The shapes' view depends on fct_commits; dbt's rename-swap would drop it (CASCADE).
        conn.execute("DROP VIEW analytics.v_commits")
    shapes_world.rebuild()
    with psycopg.connect(shapes_world.cluster.admin, autocommit=True) as conn:
        after = policy_state(conn)
        findings = audit_catalog(conn)
        conn.execute("SET ROLE dbt_service")
        conn.execute("CREATE VIEW analytics.v_commits AS SELECT * FROM analytics.fct_commits")
        conn.execute("RESET ROLE")
        conn.execute("GRANT SELECT ON analytics.v_commits TO data_analyst")
    marts = {"fct_commits", "commit_features", "dim_repositories"}
    # The predictions tables come from migration 0008 and are not rebuilt by dbt.
    model_outputs = {"commit_predictions", "commit_prediction_batches"}
    assert set(before) == set(after) == marts | model_outputs
    for table, (oid, enabled, forced, policies, analyst_can_select) in after.items():
        assert (oid != before[table][0]) == (table in marts), f"{table}: rebuilt or not?"
        assert (enabled, forced) == (True, True)
        expected = ["models_all_rows", "transform_all_rows"]
        if table != "commit_prediction_batches":  # no repo column: no department rows
            expected.insert(0, "department_isolation")
        assert policies == expected
        assert analyst_can_select  # default privileges (marts) or 0008's grants
    assert findings == []
    with connect(shapes_world, "analyst") as conn:
        assert count(conn, SHAPES["plain_select"], OWN_REPO) == 300
        assert count(conn, SHAPES["plain_select"], OTHER_REPO) == 0
