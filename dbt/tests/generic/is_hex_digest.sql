{#- Fails for every non-NULL value that is not a lowercase hex digest of `length` characters
    (64 for SHA-256/HMAC-SHA256), e.g. a plaintext e-mail that slipped through. -#}
{% test is_hex_digest(model, column_name, length=64) %}

select {{ column_name }} as not_a_digest
from {{ model }}
where {{ column_name }} is not null
  and not {{ dataplatform.regex_matches(column_name, '^[0-9a-f]{' ~ length ~ '}$') }}

{% endtest %}
