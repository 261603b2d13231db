{#-
    Use a model's custom schema verbatim (`analytics`, `staging`, `intermediate`) instead of dbt's
    default `<target schema>_<custom schema>`: grants, the Python readers and the serving layer
    address `analytics.commit_features` by that exact name on every target.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema | trim }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
