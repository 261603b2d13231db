{#-
    The latest production prediction of every commit `model_name` has scored: one row per
    commit_key with the prediction columns and `is_current_production`.

    "Latest" prefers the version that held `production` at the most recent scoring run (so a
    rollback takes effect at the next run even for commits a newer, rolled-back version had
    scored), then the newest scoring. A macro rather than an intermediate model: the marts that
    use it are security_invoker views in `analytics`, whose readers may not read `intermediate`.
-#}
{% macro latest_production_predictions(model_name) -%}
    select * from (
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
        from {{ source('predictions', 'commit_predictions') }} as predictions
        left join (
            select model_version
            from (
                select
                    model_version,
                    row_number() over (order by finished_at desc, batch_id desc) as run_recency
                from {{ source('predictions', 'commit_prediction_batches') }}
                where model_name = '{{ model_name }}'
                  and alias = 'production'
            ) as runs
            where run_recency = 1
        ) as current_production
            on predictions.model_version = current_production.model_version
        where predictions.model_name = '{{ model_name }}'
          and predictions.alias = 'production'
    ) as ranked
    where prediction_recency = 1
{%- endmacro %}
