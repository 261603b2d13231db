{#-
    Time helpers that do not depend on the session TimeZone. `timestamptz` columns are first
    turned into naive timestamps holding UTC wall-clock time (`to_utc_naive`); all calendar
    arithmetic happens on those, so DuckDB (whose timestamptz functions follow the session
    TimeZone setting) and PostgreSQL give the same answers whatever the server/client zone.
-#}

{#- A timestamptz as a naive timestamp in UTC. -#}
{% macro to_utc_naive(expr) -%}
    {{ return(adapter.dispatch('to_utc_naive', 'dataplatform')(expr)) }}
{%- endmacro %}

{% macro default__to_utc_naive(expr) -%}
    ({{ expr }} at time zone 'UTC')
{%- endmacro %}

{% macro duckdb__to_utc_naive(expr) -%}
    cast(timezone('UTC', {{ expr }}) as timestamp)
{%- endmacro %}


{#- A naive UTC timestamp shifted to local wall-clock time by an offset in minutes east of UTC
    (a NULL offset means UTC). -#}
{% macro shift_by_minutes(naive_utc_expr, offset_minutes_expr) -%}
    ({{ naive_utc_expr }} + coalesce({{ offset_minutes_expr }}, 0) * interval '1 minute')
{%- endmacro %}


{#- Hour 0..23 of a naive timestamp, as an integer. -#}
{% macro hour_of(naive_expr) -%}
    cast(extract(hour from {{ naive_expr }}) as integer)
{%- endmacro %}


{#- ISO day of week of a naive timestamp, 1 = Monday .. 7 = Sunday, as an integer. -#}
{% macro iso_day_of_week(naive_expr) -%}
    {{ return(adapter.dispatch('iso_day_of_week', 'dataplatform')(naive_expr)) }}
{%- endmacro %}

{% macro default__iso_day_of_week(naive_expr) -%}
    cast(extract(isodow from {{ naive_expr }}) as integer)
{%- endmacro %}

{% macro duckdb__iso_day_of_week(naive_expr) -%}
    cast(isodow({{ naive_expr }}) as integer)
{%- endmacro %}


{#- Seconds from `start_expr` to `end_expr` (naive UTC timestamps), truncated toward zero to a
    whole number (bigint); negative when `end` is earlier (clock skew). -#}
{% macro epoch_seconds_diff(start_expr, end_expr) -%}
    {{ return(adapter.dispatch('epoch_seconds_diff', 'dataplatform')(start_expr, end_expr)) }}
{%- endmacro %}

{% macro default__epoch_seconds_diff(start_expr, end_expr) -%}
    cast(trunc(extract(epoch from {{ end_expr }}) - extract(epoch from {{ start_expr }})) as bigint)
{%- endmacro %}

{#- epoch_us() is exact integer arithmetic (no double rounding on large spans). -#}
{% macro duckdb__epoch_seconds_diff(start_expr, end_expr) -%}
    cast(trunc((epoch_us({{ end_expr }}) - epoch_us({{ start_expr }})) / 1000000) as bigint)
{%- endmacro %}
