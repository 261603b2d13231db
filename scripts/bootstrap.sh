#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment and install the package with the locked
# versions of constraints.txt. Idempotent: a second call only checks that the install is current.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${DATAPLATFORM_VENV:-.venv}
PY=${PYTHON:-python3}
stamp="$VENV/.installed-$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)"
if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating virtual environment $VENV"
  "$PY" -m venv "$VENV"
fi
if [ ! -f "$stamp" ]; then
  echo "==> installing dataplatform and its locked dependencies (a few minutes the first time)"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
  "$VENV/bin/python" -m pip install --quiet -c constraints.txt -e ".[dev]" 2>&1 \
    | grep -v "^WARNING: Location" || true
  "$VENV/bin/python" -c "import dataplatform" # fail loudly if the install did not work
  rm -f "$VENV"/.installed-* && touch "$stamp"
fi
