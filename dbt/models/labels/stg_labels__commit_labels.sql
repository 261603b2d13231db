{#-
    1:1 with raw.commit_labels: typed, e-mails in messages replaced by `<email>` (same pattern as
    the commit marts, so labelled text equals scored text), plus `message_normalised` (lower case,
    whitespace runs collapsed, trimmed): the identity of a message for de-duplication and for
    keeping test messages out of training. Python twin: dataplatform.train.text.normalise_message.
-#}
{{ config(materialized='view', schema='staging') }}
{%- set email_pattern = dataplatform.email_pattern() -%}

with

source as (

    select * from {{ source('labels', 'commit_labels') }}

),

redacted as (

    select
        cast(label_id as {{ dbt.type_string() }}) as label_id,
        cast(dataset as {{ dbt.type_string() }}) as dataset,
        cast(source_file as {{ dbt.type_string() }}) as source_file,
        cast(source_row as integer) as source_row,
        cast(labelling_protocol as {{ dbt.type_string() }}) as labelling_protocol,
        cast(split as {{ dbt.type_string() }}) as split,
        cast(repo as {{ dbt.type_string() }}) as repo,
        lower(cast(commit_sha as {{ dbt.type_string() }})) as commit_sha,
        {{ dataplatform.regex_replace_all('cast(message as ' ~ dbt.type_string() ~ ')', email_pattern, '<email>') }}
            as message,
        is_corrective,
        is_adaptive,
        is_perfective,
        is_refactor,
        cast(maintenance_activity as {{ dbt.type_string() }}) as maintenance_activity,
        cast(project as {{ dbt.type_string() }}) as project,
        cast(annotator_comment as {{ dbt.type_string() }}) as annotator_comment,
        loaded_at

    from source

),

final as (

    select
        *,
        trim(
            {{ dataplatform.regex_replace_all('lower(message)', '[ \\t\\n\\r\\f\\v]+', ' ') }}
        ) as message_normalised

    from redacted

)

select * from final
