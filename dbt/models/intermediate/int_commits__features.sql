{#-
    One row per commit with the model features of analytics.commit_features. Definitions are the
    platform contract (docs/HELPERS-CONTEXT.md) and are mirrored by the Python twin
    dataplatform.train.features.compute_features; keep both in step.
    Features are computed on the original message; the message text that leaves for the marts has
    e-mail addresses replaced (see redacted_message), so that no e-mail reaches `analytics`.
-#}
{%- set email_pattern = dataplatform.email_pattern() -%}
{%- set issue_ref_pattern_hash = '#[0-9]+' -%}
{%- set issue_ref_pattern_key = '[A-Z][A-Z0-9]+-[0-9]+' -%}

with

commits as (

    select * from {{ ref('stg_raw__commits') }}

),

local_times as (

    select
        commit_key,
        -- the author's wall clock: UTC shifted by their own offset (UTC when the offset is NULL)
        {{ dataplatform.shift_by_minutes('authored_at_utc', 'author_utc_offset_minutes') }}
            as authored_at_author_local

    from commits

),

features as (

    select
        commits.commit_key,
        commits.repo,
        commits.commit_sha,
        commits.authored_at,
        commits.committed_at,
        {{ dataplatform.regex_replace_all('commits.message', email_pattern, '<email>') }}
            as redacted_message,
        {{ dataplatform.regex_replace_all(dataplatform.first_line('commits.message'), email_pattern, '<email>') }}
            as redacted_message_subject,
        commits.is_merge_commit,

        cast({{ dataplatform.char_length('commits.message') }} as integer) as message_length,
        cast(1 + {{ dataplatform.count_char('commits.message', 10) }} as integer)
            as message_line_count,
        cast({{ dataplatform.char_length(dataplatform.first_line('commits.message')) }} as integer)
            as subject_length,
        case
            when {{ dataplatform.regex_matches('commits.message', issue_ref_pattern_hash) }}
                or {{ dataplatform.regex_matches('commits.message', issue_ref_pattern_key) }}
                then 1
            else 0
        end as has_issue_ref,
        case
            when {{ dataplatform.contains_text('lower(commits.message)', 'merge') }} then 1 else 0
        end as mentions_merge,
        {{ dataplatform.hour_of('local_times.authored_at_author_local') }} as hour_of_day,
        {{ dataplatform.iso_day_of_week('local_times.authored_at_author_local') }} as day_of_week,
        commits.files_changed,
        commits.lines_added,
        commits.lines_deleted,
        {{ dataplatform.epoch_seconds_diff('commits.authored_at_utc', 'commits.committed_at_utc') }}
            as commit_lag_seconds,
        case when commits.is_bot_author then 1 else 0 end as is_bot_author,
        case
            when {{ dataplatform.contains_text('commits.message', 'Signed-off-by:') }} then 1 else 0
        end as has_signed_off,
        case
            when {{ dataplatform.contains_text('lower(commits.message)', 'co-authored-by:') }} then 1
            else 0
        end as has_co_author

    from commits
    inner join local_times
        on commits.commit_key = local_times.commit_key

)

select * from features
