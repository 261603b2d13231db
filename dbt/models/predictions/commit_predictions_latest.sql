{#-
    One row per commit scored by commit-classifier: its latest production prediction next to the
    label, for error analysis. "Latest" prefers the version that held `production` at the most
    recent scoring run (so a rollback takes effect at the next run even for commits a newer,
    rolled-back version had scored), then the newest scoring. A view: new predictions show up
    without rebuilding dbt.
-#}
{#-
    The pre-hook creates the two tables written by dataplatform.serve.batch if they are missing
    (same DDL as serve.batch.PREDICTIONS_DDL; keep them in step), so this view builds on a fresh
    warehouse before any production model has scored anything.
-#}
{%- set create_predictions -%}
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
{%- endset -%}
{%- set create_batches -%}
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
{%- endset -%}
{{ config(
    materialized='view',
    schema='analytics',
    pre_hook=['create schema if not exists analytics', create_predictions, create_batches],
) }}

with

predictions as (

    select * from {{ source('predictions', 'commit_predictions') }}
    where model_name = 'commit-classifier'
      and alias = 'production'

),

runs as (

    select
        model_version,
        row_number() over (order by finished_at desc, batch_id desc) as run_recency
    from {{ source('predictions', 'commit_prediction_batches') }}
    where model_name = 'commit-classifier'
      and alias = 'production'

),

current_production as (

    select model_version from runs where run_recency = 1

),

ranked as (

    select
        predictions.*,
        current_production.model_version is not null as is_current_production,
        row_number() over (
            partition by predictions.commit_key
            order by
                case when current_production.model_version is not null then 0 else 1 end,
                predictions.scored_at desc,
                predictions.model_version desc
        ) as prediction_recency
    from predictions
    left join current_production
        on predictions.model_version = current_production.model_version

),

commits as (

    select commit_key, authored_at, committed_at, is_merge_commit
    from {{ ref('fct_commits') }}

),

final as (

    select
        ranked.commit_key,
        ranked.repo,
        ranked.commit_sha,
        commits.authored_at,
        commits.committed_at,
        ranked.model_name,
        ranked.model_version,
        ranked.semver,
        ranked.is_current_production,
        ranked.predicted_class,
        ranked.predicted_class = 1 as predicted_is_merge_commit,
        ranked.probability,
        commits.is_merge_commit,
        (ranked.predicted_class = 1) = commits.is_merge_commit as is_correct,
        case
            when ranked.predicted_class = 1 and commits.is_merge_commit then 'true_positive'
            when ranked.predicted_class = 1 then 'false_positive'
            when commits.is_merge_commit then 'false_negative'
            else 'true_negative'
        end as outcome,
        ranked.scored_at,
        ranked.batch_id
    from ranked
    inner join commits
        on ranked.commit_key = commits.commit_key
    where ranked.prediction_recency = 1

)

select * from final
