{#-
    Row-level security for every relation dbt (re)builds in `analytics` (PostgreSQL only).

    dbt's table materialization builds a new table and renames it into place, so policies on the
    old table are lost on every build. This post-hook runs inside the same transaction, after the
    rename and before the commit, and calls security.apply_row_security (migration 0005): RLS
    enabled + forced, department policy (re)created, views switched to security_invoker. No
    session ever sees the new table without its policies.

    A database without the security migrations (no such function) is skipped, unless
    DATAPLATFORM_DBT_REQUIRE_RLS=true (staging/prod), which makes the build fail instead.
-#}
{% macro secure_relation(relation=none) -%}
    {%- set relation = relation if relation is not none else this -%}
    {%- if target.type == 'postgres' and execute and relation.schema == 'analytics' -%}
        {%- set found = run_query(
            "select to_regprocedure('security.apply_row_security(regclass)') is not null"
        ) -%}
        {%- if found.columns[0].values()[0] -%}
            select security.apply_row_security('{{ relation }}'::regclass)
        {%- elif env_var('DATAPLATFORM_DBT_REQUIRE_RLS', 'false') | lower == 'true' -%}
            {{ exceptions.raise_compiler_error(
                "row-level security required but security.apply_row_security is missing: "
                ~ "run `dataplatform db migrate` first"
            ) }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
