{#- Fails when the model's row count differs from the number of rows of `source_relation`
    (a ref or source): proves a model keeps the grain of what it is built from. -#}
{% test row_count_matches(model, compare_to) %}

with

model_rows as (select count(*) as row_count from {{ model }}),
compare_rows as (select count(*) as row_count from {{ compare_to }})

select model_rows.row_count as model_row_count, compare_rows.row_count as compare_row_count
from model_rows
cross join compare_rows
where model_rows.row_count <> compare_rows.row_count

{% endtest %}
