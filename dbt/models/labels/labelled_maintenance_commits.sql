{#-
    Levin & Yehudai's 1,151 commits with their single maintenance-activity label (corrective /
    perfective / adaptive) and the project each comes from (for leave-projects-out evaluation).
    One row per label row (key label_id): the two shas that occur twice are kept as labelled,
    as in the published set; both copies share a project, so project-wise splits never separate
    them. Joined to ingested commits by sha where possible.
-#}
{{ config(materialized='table', schema='analytics') }}

with

labels as (

    select * from {{ ref('stg_labels__commit_labels') }}
    where maintenance_activity is not null

),

commits as (

    select commit_key, commit_sha, authored_at
    from {{ ref('commit_features') }}

),

joined as (

    select
        labels.*,
        commits.commit_key,
        commits.authored_at,
        row_number() over (partition by labels.label_id order by commits.commit_key) as match_rank
    from labels
    left join commits
        on commits.commit_sha = labels.commit_sha

)

select
    label_id,
    commit_key,
    commit_sha,
    message,
    maintenance_activity,
    maintenance_activity = 'corrective' as is_corrective,
    project,
    dataset,
    labelling_protocol,
    source_file,
    source_row,
    commit_key is not null as has_git_metadata,
    authored_at
from joined
where match_rank = 1
  and coalesce(message, '') <> ''
