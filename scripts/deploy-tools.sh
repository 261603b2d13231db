#!/usr/bin/env bash
# Create (or reuse) the deployment tools venv .venv-tools with the pinned linters of
# requirements-deploy-tools.txt: Helm's engine (helm-python-sdk), kubernetes-validate, checkov,
# hadolint, check-jsonschema. Idempotent: a second call only checks the stamp.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${DATAPLATFORM_TOOLS_VENV:-.venv-tools}
PY=${PYTHON:-python3}
stamp="$VENV/.installed-$(sha256sum requirements-deploy-tools.txt | cut -c1-16)"
if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating the deployment tools venv $VENV"
  "$PY" -m venv "$VENV"
fi
if [ ! -f "$stamp" ]; then
  echo "==> installing the deployment tools (a few minutes the first time)"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
  "$VENV/bin/python" -m pip install --quiet -r requirements-deploy-tools.txt 2>&1 \
    | grep -v "^WARNING: Location" || true
  # Fail loudly if an engine did not install.
  "$VENV/bin/python" -c "import helm_python, kubernetes_validate; print('helm', helm_python.helm_sdk_version())"
  "$VENV/bin/hadolint" --version >/dev/null
  "$VENV/bin/checkov" --version >/dev/null
  "$VENV/bin/check-jsonschema" --version >/dev/null
  rm -f "$VENV"/.installed-* && touch "$stamp"
fi
