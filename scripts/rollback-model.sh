#!/usr/bin/env bash
# Emergency model rollback for operators: a thin wrapper over `dataplatform model rollback`.
# Moves `production` back to the version that held it before (from the promotion history),
# archives the bad version, records both, smoke-tests the restored model and notifies.
# Usage: scripts/rollback-model.sh MODEL_NAME "REASON"
# Exit codes: 0 rolled back, 1 failure, 2 nothing to roll back to.
set -euo pipefail

if [[ $# -lt 1 || -z "${1:-}" ]]; then
    echo "usage: $0 MODEL_NAME [REASON]" >&2
    exit 1
fi
MODEL_NAME=$1
REASON=${2:-"Performance degradation"}

if command -v dataplatform >/dev/null 2>&1; then
    DP=(dataplatform)
else
    # Fall back to the repo's virtualenv when the entry point is not on PATH.
    ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    DP=("$ROOT/.venv/bin/python" -m dataplatform)
fi

exec "${DP[@]}" model rollback "$MODEL_NAME" --reason "$REASON"
