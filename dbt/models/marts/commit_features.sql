{#-
    One row per commit: the feature mart, the one hand-off from SQL to Python (training and
    scoring). Columns and definitions are a platform contract (docs/HELPERS-CONTEXT.md);
    the Python twin dataplatform.train.features.compute_features is parity-tested against it.
-#}
with

features as (

    select * from {{ ref('int_commits__features') }}

),

final as (

    select
        commit_key,
        repo,
        commit_sha,
        authored_at,
        committed_at,
        redacted_message as message,
        is_merge_commit,
        message_length,
        message_line_count,
        subject_length,
        has_issue_ref,
        mentions_merge,
        hour_of_day,
        day_of_week,
        files_changed,
        lines_added,
        lines_deleted,
        commit_lag_seconds,
        is_bot_author,
        has_signed_off,
        has_co_author

    from features

)

select * from final
