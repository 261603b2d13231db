{#-
    Regular expressions that behave the same on DuckDB (RE2) and PostgreSQL (ARE) as long as the
    pattern sticks to the common subset: literals, bracket classes with ASCII ranges, `+ * ?`,
    `{m,n}` and groups. Matching is case-sensitive and unanchored (like Python's `re.search`).
    `pattern` is a SQL string literal's content: single quotes are doubled here.
-#}

{% macro regex_matches(expr, pattern) -%}
    {{ return(adapter.dispatch('regex_matches', 'dataplatform')(expr, pattern)) }}
{%- endmacro %}

{% macro default__regex_matches(expr, pattern) -%}
    ({{ expr }} ~ '{{ pattern | replace("'", "''") }}')
{%- endmacro %}

{% macro duckdb__regex_matches(expr, pattern) -%}
    regexp_matches({{ expr }}, '{{ pattern | replace("'", "''") }}')
{%- endmacro %}


{#- Replace every non-overlapping match of `pattern` with the literal `replacement`. -#}
{% macro regex_replace_all(expr, pattern, replacement) -%}
    {{ return(adapter.dispatch('regex_replace_all', 'dataplatform')(expr, pattern, replacement)) }}
{%- endmacro %}

{% macro default__regex_replace_all(expr, pattern, replacement) -%}
    regexp_replace(
        {{ expr }},
        '{{ pattern | replace("'", "''") }}',
        '{{ replacement | replace("'", "''") }}',
        'g'
    )
{%- endmacro %}
