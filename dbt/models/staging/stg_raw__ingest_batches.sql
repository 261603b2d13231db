{#- 1:1 with raw.ingest_batches. -#}
with

source as (

    select * from {{ source('raw', 'ingest_batches') }}

),

renamed as (

    select
        cast(batch_id as {{ dbt.type_string() }}) as batch_id,
        cast(repo as {{ dbt.type_string() }}) as repo,
        cast(source as {{ dbt.type_string() }}) as source,
        cast(ingest_date as {{ dbt.type_string() }}) as ingest_date,
        cast(row_count as bigint) as row_count,
        cast(rows_inserted as bigint) as rows_inserted,
        cast(quarantined_count as bigint) as quarantined_count,
        cast(checksum as {{ dbt.type_string() }}) as checksum,
        cast(watermark_json as {{ dbt.type_string() }}) as watermark_json,
        loaded_at

    from source

)

select * from renamed
