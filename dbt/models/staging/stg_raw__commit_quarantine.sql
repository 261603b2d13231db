{#- 1:1 with raw.commit_quarantine, without the `raw` payload (it may hold plaintext e-mails). -#}
with

source as (

    select * from {{ source('raw', 'commit_quarantine') }}

),

renamed as (

    select
        cast(batch_id as {{ dbt.type_string() }}) || ':' || cast(position as {{ dbt.type_string() }})
            as quarantine_key,
        cast(batch_id as {{ dbt.type_string() }}) as batch_id,
        cast(source as {{ dbt.type_string() }}) as source,
        cast(position as bigint) as position,
        cast(reason as {{ dbt.type_string() }}) as reason,
        cast(repo as {{ dbt.type_string() }}) as repo,
        cast(commit_sha as {{ dbt.type_string() }}) as commit_sha,
        loaded_at

    from source

)

select * from renamed
