{#-
    Corrective commit probability (CCP, Amit & Feitelson) per repository and calendar month
    (UTC, by authored_at): the share of a repository's non-merge commits that the production
    `corrective-classifier` predicts to be bug fixes. Merge commits are left out: they carry no
    change of their own (their branch's commits are counted themselves).
    Every month with a non-merge commit has a row; `ccp` is NULL while none of its commits has a
    production prediction (e.g. before the first batch scoring), so the view builds and answers
    on an empty analytics.commit_predictions. Prediction per commit: the latest production one
    (macros/latest_production_predictions.sql, as in commit_predictions_latest).
    The raw hit rate is reported; the paper's correction for the classifier's recall and false
    positive rate, (hit rate - FPR) / (recall - FPR), is not applied.
    A view, so that new predictions count without rebuilding dbt.
-#}
{{ config(materialized='view', schema='analytics') }}
-- Built after commit_predictions_latest, whose pre-hook creates the predictions tables on a
-- fresh warehouse: depends_on: {{ ref('commit_predictions_latest') }}

with

latest as (

    {{ latest_production_predictions('corrective-classifier') }}

),

commits as (

    select
        commit_key,
        repo,
        cast(date_trunc('month', {{ dataplatform.to_utc_naive('authored_at') }}) as date)
            as month
    from {{ ref('fct_commits') }}
    where not is_merge_commit

),

monthly as (

    select
        commits.repo,
        commits.month,
        count(*) as commit_count,
        count(latest.commit_key) as scored_commit_count,
        coalesce(sum(case when latest.predicted_class = 1 then 1 else 0 end), 0)
            as corrective_commit_count,
        avg(latest.probability) as mean_corrective_probability,
        max(latest.model_version) as model_version
    from commits
    left join latest
        on commits.commit_key = latest.commit_key
    group by commits.repo, commits.month

),

final as (

    select
        repo,
        month,
        cast(commit_count as integer) as commit_count,
        cast(scored_commit_count as integer) as scored_commit_count,
        cast(corrective_commit_count as integer) as corrective_commit_count,
        case
            when scored_commit_count > 0
                then cast(corrective_commit_count as double precision) / scored_commit_count
        end as ccp,
        cast(mean_corrective_probability as double precision) as mean_corrective_probability,
        model_version
    from monthly

)

select * from final
