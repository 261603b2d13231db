{#-
    1:1 with raw.commits: renames, casts and the removal of personal data. Plaintext e-mails and
    names stay in raw; what leaves is the keyed e-mail hashes and the derived is_bot_author flag.
    Timestamps stay instants (timestamptz); naive UTC copies are added for calendar arithmetic
    that must not depend on the session TimeZone.
-#}
with

source as (

    select * from {{ source('raw', 'commits') }}

),

renamed as (

    select
        -- ids
        cast(repo as {{ dbt.type_string() }}) || ':' || cast(commit_sha as {{ dbt.type_string() }})
            as commit_key,
        cast(repo as {{ dbt.type_string() }}) as repo,
        cast(commit_sha as {{ dbt.type_string() }}) as commit_sha,
        cast(author_email_hash as {{ dbt.type_string() }}) as author_email_hash,
        cast(committer_email_hash as {{ dbt.type_string() }}) as committer_email_hash,
        cast(batch_id as {{ dbt.type_string() }}) as batch_id,

        -- numbers
        cast(parent_count as integer) as parent_count,
        cast(files_changed as integer) as files_changed,
        cast(lines_added as integer) as lines_added,
        cast(lines_deleted as integer) as lines_deleted,
        cast(author_utc_offset_minutes as integer) as author_utc_offset_minutes,
        cast(committer_utc_offset_minutes as integer) as committer_utc_offset_minutes,

        -- text
        cast(message as {{ dbt.type_string() }}) as message,

        -- booleans (derived here so that author_name never leaves raw)
        parent_count > 1 as is_merge_commit,
        parent_count = 0 as is_root_commit,
        (
            {{ dataplatform.contains_text('lower(author_name)', '[bot]') }}
            or {{ dataplatform.ends_with_text('lower(author_name)', 'bot') }}
        ) as is_bot_author,

        -- timestamps
        authored_at,
        committed_at,
        {{ dataplatform.to_utc_naive('authored_at') }} as authored_at_utc,
        {{ dataplatform.to_utc_naive('committed_at') }} as committed_at_utc,
        loaded_at

    from source

)

select * from renamed
