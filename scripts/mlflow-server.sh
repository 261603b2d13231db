#!/usr/bin/env bash
# An MLflow tracking server with a PostgreSQL backend store and S3 artifacts, for tests and local
# staging runs.
#
#   scripts/mlflow-server.sh start DIR [PORT]   start a server (state in DIR); prints its URI
#   scripts/mlflow-server.sh stop DIR           stop it and remove DIR
#   scripts/mlflow-server.sh uri DIR            print the tracking URI of a running server again
#
# Read from the environment (so that no secret appears on a command line):
#   MLFLOW_BACKEND_STORE_URI      postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB   (required)
#   MLFLOW_ARTIFACTS_DESTINATION  s3://BUCKET/PREFIX                                  (required)
#   MLFLOW_S3_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION (S3 access)
#   MLFLOW_BIN (default .venv/bin/mlflow), MLFLOW_SERVER_WORKERS (default 1)
# The server binds 127.0.0.1 and proxies artifacts (`--serve-artifacts`): clients log to
# `mlflow-artifacts:/...` and never need the S3 keys. Its background job runner is off.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MARKER=.dataplatform-mlflow

die() { echo "mlflow-server.sh: $*" >&2; exit 1; }

# shellcheck source=lib/service.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/service.sh"  # port_in_use, pick_port, ...

is_running() { pid_alive "$1/mlflow.pid"; }

cmd_start() {
  local dir=${1:?usage: mlflow-server.sh start DIR [PORT]} port=${2:-}
  dir=$(realpath -m "$dir")
  if is_running "$dir"; then cat "$dir/uri"; return 0; fi
  : "${MLFLOW_BACKEND_STORE_URI:?set MLFLOW_BACKEND_STORE_URI (postgresql+psycopg://...)}"
  : "${MLFLOW_ARTIFACTS_DESTINATION:?set MLFLOW_ARTIFACTS_DESTINATION (s3://bucket/prefix)}"
  local mlflow=${MLFLOW_BIN:-$ROOT/.venv/bin/mlflow}
  [ -x "$mlflow" ] || mlflow=$(command -v mlflow) || die "mlflow not found (set MLFLOW_BIN)"
  if [ -d "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ] && [ ! -f "$dir/$MARKER" ]; then
    die "$dir exists and is not empty"
  fi
  mkdir -p "$dir"
  touch "$dir/$MARKER"
  chmod 700 "$dir"
  port=${port:-$(pick_port)}
  # setsid: the server and its uvicorn workers share one process group that `stop` ends.
  (
    cd "$dir"
    export MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false MLFLOW_DISABLE_TELEMETRY=true
    export DO_NOT_TRACK=true
    exec setsid "$mlflow" server \
      --host 127.0.0.1 --port "$port" \
      --workers "${MLFLOW_SERVER_WORKERS:-1}" \
      --serve-artifacts \
      >"$dir/mlflow.log" 2>&1 < /dev/null
  ) &
  echo $! > "$dir/mlflow.pid"
  local uri="http://127.0.0.1:$port" waited=0
  until [ "$(curl -s --max-time 2 "$uri/health" 2>/dev/null)" = "OK" ]; do
    if ! is_running "$dir"; then tail -n 30 "$dir/mlflow.log" >&2; die "mlflow exited during start"; fi
    if [ $waited -ge 360 ]; then tail -n 30 "$dir/mlflow.log" >&2; die "not ready after 180s"; fi
    sleep 0.5; waited=$((waited + 1))
  done
  echo "$uri" > "$dir/uri"
  echo "$uri"
}

cmd_stop() {
  local dir=${1:?usage: mlflow-server.sh stop DIR}
  stop_service_dir "$(realpath -m "$dir")" mlflow.pid "$MARKER" mlflow-server.sh
}

case "${1:-}" in
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  uri) shift; cat "$(realpath -m "${1:?usage: mlflow-server.sh uri DIR}")/uri" ;;
  *) echo "usage: $0 start DIR [PORT] | stop DIR | uri DIR" >&2; exit 2 ;;
esac
