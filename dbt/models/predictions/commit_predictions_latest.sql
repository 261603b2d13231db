{#-
    One row per commit scored by commit-classifier: its latest production prediction next to the
    label, for error analysis ("latest": macros/latest_production_predictions.sql). A view: new
    predictions show up without rebuilding dbt.
-#}
{#-
    The pre-hook creates the two tables written by dataplatform.serve.batch if they are missing
    (macros/create_if_missing.sql), so this view builds on a fresh warehouse before any
    production model has scored anything.
-#}
{{ config(
    materialized='view',
    schema='analytics',
    pre_hook=[
        "{{ create_if_missing('commit_predictions', 'create schema if not exists analytics') }}",
        "{{ create_if_missing('commit_predictions', predictions_table_ddl()) }}",
        "{{ create_if_missing('commit_prediction_batches', prediction_batches_table_ddl()) }}",
    ],
) }}

with

latest as (

    {{ latest_production_predictions('commit-classifier') }}

),

commits as (

    select commit_key, authored_at, committed_at, is_merge_commit
    from {{ ref('fct_commits') }}

),

final as (

    select
        latest.commit_key,
        latest.repo,
        latest.commit_sha,
        commits.authored_at,
        commits.committed_at,
        latest.model_name,
        latest.model_version,
        latest.semver,
        latest.is_current_production,
        latest.predicted_class,
        latest.predicted_class = 1 as predicted_is_merge_commit,
        latest.probability,
        commits.is_merge_commit,
        (latest.predicted_class = 1) = commits.is_merge_commit as is_correct,
        case
            when latest.predicted_class = 1 and commits.is_merge_commit then 'true_positive'
            when latest.predicted_class = 1 then 'false_positive'
            when commits.is_merge_commit then 'false_negative'
            else 'true_negative'
        end as outcome,
        latest.scored_at,
        latest.batch_id
    from latest
    inner join commits
        on latest.commit_key = commits.commit_key

)

select * from final
