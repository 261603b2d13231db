#!/usr/bin/env bash
# Print the path of a working `promtool`, installing Debian's `prometheus` package if needed.
#
#   scripts/promtool.sh            -> prints e.g. /usr/bin/promtool (exit 0), or explains (exit 1)
#   scripts/promtool.sh test rules helm/data-platform/files/prometheus-rules.test.yaml
#                                  -> runs promtool with those arguments
#
# Fast and idempotent when promtool is already there: $PROMTOOL, then PATH, then the Debian path.
# Installing needs root (CI runs as root) and the Debian package mirror; nothing else is fetched.
set -euo pipefail

find_promtool() {
  local candidate
  for candidate in "${PROMTOOL:-}" "$(command -v promtool 2>/dev/null || true)" /usr/bin/promtool \
    /usr/local/bin/promtool; do
    if [[ -n "$candidate" && -x "$candidate" ]] && "$candidate" --version >/dev/null 2>&1; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

if ! tool="$(find_promtool)"; then
  if [[ "$(id -u)" != "0" ]] || ! command -v apt-get >/dev/null 2>&1; then
    echo "promtool not found; install Debian's 'prometheus' package (needs root) or set PROMTOOL" >&2
    exit 1
  fi
  echo "promtool not found: installing Debian's 'prometheus' package" >&2
  export DEBIAN_FRONTEND=noninteractive
  # Only the daemon's promtool is wanted: do not start the service the package ships.
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends prometheus >&2
  tool="$(find_promtool)" || { echo "promtool still missing after install" >&2; exit 1; }
fi

if [[ $# -eq 0 ]]; then
  echo "$tool"
else
  exec "$tool" "$@"
fi
