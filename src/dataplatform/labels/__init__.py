"""Human labels of commits as data: label files -> `raw.commit_labels`; CCP rows for summaries.

* `sources`: the catalogue of known label files (data set, labelling protocol, split, columns)
  and the pure parsing of one file into label rows.
* `loader`: idempotent load of a labels folder into the warehouse.
* `ccp`: read the corrective-commit-probability mart for the repositories of a run.
"""

from dataplatform.labels.ccp import RepositoryMonthCcp, repository_monthly_ccp
from dataplatform.labels.loader import LabelLoadResult, load_labels
from dataplatform.labels.sources import (
    LABEL_FILES,
    LabelFile,
    LabelsError,
    ParsedLabels,
    parse_label_file,
    resolve_labels_dir,
)

__all__ = [
    "LABEL_FILES",
    "LabelFile",
    "LabelLoadResult",
    "LabelsError",
    "ParsedLabels",
    "RepositoryMonthCcp",
    "load_labels",
    "parse_label_file",
    "repository_monthly_ccp",
    "resolve_labels_dir",
]
