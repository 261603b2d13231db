{#- Number of characters (Unicode code points, like Python's len(str)) of a text expression.
    PostgreSQL counts code points only in a UTF8 database, which the platform requires. -#}
{% macro char_length(expr) -%}
    {{ return(adapter.dispatch('char_length', 'dataplatform')(expr)) }}
{%- endmacro %}

{% macro default__char_length(expr) -%}
    char_length({{ expr }})
{%- endmacro %}

{#- DuckDB's length() counts code points (length_grapheme() would count grapheme clusters). -#}
{% macro duckdb__char_length(expr) -%}
    length({{ expr }})
{%- endmacro %}


{#- How many times the single character chr(`code_point`) occurs in `expr` (an integer). -#}
{% macro count_char(expr, code_point) -%}
    ({{ dataplatform.char_length(expr) }}
        - {{ dataplatform.char_length("replace(" ~ expr ~ ", chr(" ~ code_point ~ "), '')") }})
{%- endmacro %}


{#- True when `needle` (a plain string, no pattern) occurs in `expr`; case-sensitive. -#}
{% macro contains_text(expr, needle) -%}
    (strpos({{ expr }}, '{{ needle | replace("'", "''") }}') > 0)
{%- endmacro %}


{#- True when `expr` ends with `suffix` (a plain string); case-sensitive. -#}
{% macro ends_with_text(expr, suffix) -%}
    {{ return(adapter.dispatch('ends_with_text', 'dataplatform')(expr, suffix)) }}
{%- endmacro %}

{% macro default__ends_with_text(expr, suffix) -%}
    (right({{ expr }}, {{ suffix | length }}) = '{{ suffix | replace("'", "''") }}')
{%- endmacro %}

{% macro duckdb__ends_with_text(expr, suffix) -%}
    suffix({{ expr }}, '{{ suffix | replace("'", "''") }}')
{%- endmacro %}


{#- The first line of a text: everything before the first '\n', trailing '\r's removed
    (so CRLF messages give the same subject as LF ones). -#}
{% macro first_line(expr) -%}
    rtrim(split_part({{ expr }}, chr(10), 1), chr(13))
{%- endmacro %}
