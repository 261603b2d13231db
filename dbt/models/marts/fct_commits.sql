{#- One row per commit: the facts of a commit with pseudonymised people (e-mail hashes only). -#}
with

commits as (

    select * from {{ ref('stg_raw__commits') }}

),

features as (

    select * from {{ ref('int_commits__features') }}

),

final as (

    select
        commits.commit_key,
        commits.repo,
        commits.commit_sha,
        commits.authored_at,
        commits.committed_at,
        commits.author_utc_offset_minutes,
        commits.committer_utc_offset_minutes,
        commits.author_email_hash,
        commits.committer_email_hash,
        commits.parent_count,
        commits.is_merge_commit,
        commits.is_root_commit,
        commits.is_bot_author,
        commits.files_changed,
        commits.lines_added,
        commits.lines_deleted,
        commits.lines_added + commits.lines_deleted as lines_changed,
        features.redacted_message_subject as message_subject,
        features.commit_lag_seconds,
        commits.batch_id,
        commits.loaded_at

    from commits
    inner join features
        on commits.commit_key = features.commit_key

)

select * from final
