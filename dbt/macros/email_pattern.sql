{#-
    What counts as an e-mail address in free text (messages): a run of non-delimiter characters,
    '@', another run. Broad on purpose (also catches `git@github.com:` and bot addresses such as
    `1+dependabot[bot]@users.noreply.github.com`): redacting a non-e-mail is harmless, leaking an
    e-mail is not. Delimiters are ASCII whitespace (written as escapes, so that DuckDB's RE2 and
    PostgreSQL's ARE agree; `[:space:]` would differ on non-ASCII spaces) and <>()"',;:@ and `.
    Used by int_commits__features (redaction) and assert_no_plaintext_email_in_analytics.
-#}
{% macro email_pattern() -%}
    {%- set part = "[^ \\t\\n\\r\\f\\v<>()\"',;:@`]+" -%}
    {{ return(part ~ "@" ~ part) }}
{%- endmacro %}
