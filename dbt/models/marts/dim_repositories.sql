{#- One row per repository: commit counts, merge share, time span, authors and latest load. -#}
with

commits as (

    select * from {{ ref('stg_raw__commits') }}

),

batches as (

    select * from {{ ref('stg_raw__ingest_batches') }}

),

quarantine as (

    select * from {{ ref('stg_raw__commit_quarantine') }}

),

commit_stats as (

    select
        repo,
        count(*) as commit_count,
        sum(case when is_merge_commit then 1 else 0 end) as merge_commit_count,
        sum(case when is_bot_author then 1 else 0 end) as bot_commit_count,
        count(distinct author_email_hash) as distinct_author_count,
        min(authored_at) as first_authored_at,
        min(committed_at) as first_committed_at,
        max(committed_at) as last_committed_at,
        max(loaded_at) as last_loaded_at

    from commits
    group by repo

),

ranked_batches as (

    select
        repo,
        batch_id,
        loaded_at,
        row_number() over (partition by repo order by loaded_at desc, batch_id desc) as recency_rank

    from batches

),

latest_batches as (

    select
        repo,
        batch_id as latest_batch_id,
        loaded_at as latest_batch_loaded_at

    from ranked_batches
    where recency_rank = 1

),

batch_stats as (

    select
        repo,
        count(*) as batch_count

    from batches
    group by repo

),

quarantine_stats as (

    select
        repo,
        count(*) as quarantined_record_count

    from quarantine
    where repo is not null
    group by repo

),

final as (

    select
        commit_stats.repo,
        cast(commit_stats.commit_count as bigint) as commit_count,
        cast(commit_stats.merge_commit_count as bigint) as merge_commit_count,
        cast(commit_stats.merge_commit_count as double precision)
            / commit_stats.commit_count as merge_commit_share,
        cast(commit_stats.bot_commit_count as bigint) as bot_commit_count,
        cast(commit_stats.distinct_author_count as bigint) as distinct_author_count,
        commit_stats.first_authored_at,
        commit_stats.first_committed_at,
        commit_stats.last_committed_at,
        commit_stats.last_loaded_at,
        cast(coalesce(batch_stats.batch_count, 0) as bigint) as batch_count,
        latest_batches.latest_batch_id,
        latest_batches.latest_batch_loaded_at,
        cast(coalesce(quarantine_stats.quarantined_record_count, 0) as bigint)
            as quarantined_record_count

    from commit_stats
    left join latest_batches
        on commit_stats.repo = latest_batches.repo
    left join batch_stats
        on commit_stats.repo = batch_stats.repo
    left join quarantine_stats
        on commit_stats.repo = quarantine_stats.repo

)

select * from final
