{#-
    Training mart of `corrective-classifier`: one row per labelled commit (Amit & Feitelson's
    corrective labels), split into
      * `paper_test_random`: the paper's test set (commits_updated5, Sampling = 'Random');
      * `train`: random_batch_2020 + the 2018 bugfix files, de-duplicated by sha (then by
        normalised message for sha-less rows), WITHOUT any row whose sha or normalised message is
        in the test set.
    Other labelled files (paper validation, 3-annotator set, non-random samples) are left out, so
    they stay usable as untouched evaluation sets. Rows are joined to ingested commits by sha
    where possible (`has_git_metadata`); message-only labels are kept, keyed by their sha or by a
    hash of the message.
-#}
{{ config(materialized='table', schema='analytics') }}

with

labels as (

    select * from {{ ref('stg_labels__commit_labels') }}
    where dataset = 'amit-feitelson-ccp'
      and is_corrective is not null

),

test_rows as (

    select
        *,
        row_number() over (
            partition by coalesce(commit_sha, message_normalised) order by source_file, source_row
        ) as duplicate_rank
    from labels
    where split = 'paper_test_random'

),

test_set as (

    select * from test_rows where duplicate_rank = 1

),

train_candidates as (

    select
        *,
        -- newer protocol first, then the 2018 train file, then the 2018 "test" file
        case split
            when 'random_batch_2020' then 1
            when 'bugfix_2018_train' then 2
            else 3
        end as split_priority
    from labels
    where split in ('random_batch_2020', 'bugfix_2018_train', 'bugfix_2018_test')

),

train_without_test as (

    select * from train_candidates as candidate
    where not exists (
            select 1 from test_set
            where test_set.commit_sha = candidate.commit_sha
        )
        and not exists (
            select 1 from test_set
            where test_set.message_normalised = candidate.message_normalised
        )

),

train_ranked as (

    select
        *,
        row_number() over (
            partition by coalesce(commit_sha, message_normalised)
            order by split_priority, source_file, source_row
        ) as duplicate_rank
    from train_without_test

),

selected as (

    select
        label_id, dataset, source_file, source_row, labelling_protocol, split as label_split,
        'paper_test_random' as split, repo, commit_sha, message, message_normalised, is_corrective
    from test_set

    union all

    select
        label_id, dataset, source_file, source_row, labelling_protocol, split as label_split,
        'train' as split, repo, commit_sha, message, message_normalised, is_corrective
    from train_ranked
    where duplicate_rank = 1

),

commits as (

    select commit_key, repo, commit_sha, message, authored_at, committed_at
    from {{ ref('commit_features') }}

),

joined as (

    select
        selected.*,
        commits.commit_key as joined_commit_key,
        commits.repo as joined_repo,
        commits.message as joined_message,
        commits.authored_at,
        commits.committed_at,
        row_number() over (
            partition by selected.label_id
            -- the same sha can live in forks: prefer the repository the label names
            order by
                case when commits.repo = selected.repo then 0 else 1 end,
                commits.repo
        ) as match_rank
    from selected
    left join commits
        on commits.commit_sha = selected.commit_sha

),

final as (

    select
        coalesce(
            joined_commit_key,
            case
                when commit_sha is not null and repo is not null then repo || ':' || commit_sha
                when commit_sha is not null then 'sha:' || commit_sha
                else 'message:' || md5(message_normalised)
            end
        ) as commit_key,
        coalesce(joined_repo, repo) as repo,
        commit_sha,
        -- the text that was labelled; the commit's own (redacted) text when the label has none
        coalesce(message, joined_message) as message,
        is_corrective,
        split,
        label_split,
        dataset,
        labelling_protocol,
        source_file,
        source_row,
        label_id,
        joined_commit_key is not null as has_git_metadata,
        authored_at,
        committed_at
    from joined
    where match_rank = 1
      and coalesce(message, joined_message, '') <> ''

)

select * from final
