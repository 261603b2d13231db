#!/usr/bin/env bash
# Quality table of the label-trained models against the published figures (docs/models.md).
# Labels: --labels-dir DIR, else $DATAPLATFORM_LABELS_DIR, else ../shared/datasets/labels.
# Runs on a throwaway DuckDB + MLflow home unless --home DIR is given (keep the runs there).
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python benchmarks/corrective_quality.py "$@"
