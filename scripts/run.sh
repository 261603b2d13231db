#!/usr/bin/env bash
# The platform's main job, end to end, on the embedded defaults: no server, no network.
# Sets up the virtual environment if needed, then runs `dataplatform run` on the commit data
# shipped in data/commits (or on the sources given as arguments: repository paths, clone URLs,
# commit dataset files). Results live under $DATAPLATFORM_HOME (default ./.dataplatform).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
export DATAPLATFORM_HOME=${DATAPLATFORM_HOME:-$PWD/.dataplatform}
exec .venv/bin/dataplatform run "$@"
