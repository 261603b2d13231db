{#-
    A hook that runs `ddl` only when analytics.`identifier` does not exist yet, else a no-op.

    The predictions model creates the tables batch scoring writes on a warehouse that has none
    (DuckDB, a test database). A migrated PostgreSQL database has them (migration 0008), and
    dbt_service may not run CREATE SCHEMA there (no CREATE on the database), so nothing runs.
-#}
{% macro create_if_missing(identifier, ddl) -%}
    {%- if execute and adapter.get_relation(
            database=target.database, schema='analytics', identifier=identifier) is none -%}
        {{ ddl }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

{#- The tables of dataplatform.serve.batch: same DDL as serve.batch.PREDICTIONS_DDL and
    migration 0008 (keep the three in step; tests compare them). -#}
{% macro predictions_table_ddl() -%}
    create table if not exists analytics.commit_predictions (
        commit_key      text not null,
        repo            text not null,
        commit_sha      text not null,
        model_name      text not null,
        model_version   integer not null,
        semver          text,
        alias           text not null,
        predicted_class integer not null,
        probability     double precision,
        scored_at       timestamptz not null,
        batch_id        text not null,
        primary key (commit_key, model_name, model_version)
    )
{%- endmacro %}
{% macro prediction_batches_table_ddl() -%}
    create table if not exists analytics.commit_prediction_batches (
        batch_id            text primary key,
        model_name          text not null,
        model_version       integer not null,
        semver              text,
        alias               text not null,
        source_table        text not null,
        rows_scored         bigint not null,
        rows_already_scored bigint not null,
        rows_invalid        bigint not null,
        started_at          timestamptz not null,
        finished_at         timestamptz not null
    )
{%- endmacro %}
