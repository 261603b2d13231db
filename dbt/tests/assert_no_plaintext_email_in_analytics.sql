{#-
    No e-mail may reach `analytics`. Fails with one row per offending value when
      * a text column of a mart holds something shaped like an e-mail address, or
      * an id/hash column equals a plaintext e-mail of raw.commits (e.g. a hash step skipped).
    Keep the list below in step with the marts' text columns.
-#}
{%- set email_pattern = dataplatform.email_pattern() -%}

with

raw_emails as (

    -- only '@' ones: a skipped hash step would leak every e-mail, so these suffice to see it,
    -- and odd values such as '=' would otherwise match innocent text
    select author_email as email from {{ source('raw', 'commits') }}
    where strpos(author_email, '@') > 0
    union
    select committer_email as email from {{ source('raw', 'commits') }}
    where strpos(committer_email, '@') > 0

),

analytics_text as (

    select 'fct_commits' as model_name, commit_key, 'author_email_hash' as column_name,
        author_email_hash as value
    from {{ ref('fct_commits') }}
    union all
    select 'fct_commits', commit_key, 'committer_email_hash', committer_email_hash
    from {{ ref('fct_commits') }}
    union all
    select 'fct_commits', commit_key, 'message_subject', message_subject
    from {{ ref('fct_commits') }}
    union all
    select 'commit_features', commit_key, 'message', message
    from {{ ref('commit_features') }}
    union all
    select 'dim_repositories', repo, 'repo', repo
    from {{ ref('dim_repositories') }}
    union all
    select 'dim_repositories', repo, 'latest_batch_id', latest_batch_id
    from {{ ref('dim_repositories') }}

),

email_shaped as (

    select model_name, commit_key, column_name, 'e-mail shaped text' as problem
    from analytics_text
    where value is not null
      and {{ dataplatform.regex_matches('value', email_pattern) }}

),

equal_to_raw_email as (

    select analytics_text.model_name, analytics_text.commit_key, analytics_text.column_name,
        'equals a raw e-mail' as problem
    from analytics_text
    inner join raw_emails
        on analytics_text.value = raw_emails.email

)

select * from email_shaped
union all
select * from equal_to_raw_email
