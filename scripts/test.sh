#!/usr/bin/env bash
# The whole test suite on a fresh machine: virtual environment and packages, the offline deploy
# linters (.venv-tools), promtool, a throwaway PostgreSQL cluster from the machine's own
# binaries, lint, types and security scans, then pytest with the coverage gate (>= 70 %, design
# gate 1). The tests start their own S3 (SeaweedFS) and MLflow servers and API processes.
# Everything started here is stopped on exit.
# Extra arguments go to pytest (e.g. scripts/test.sh tests/unit -x).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
./scripts/deploy-tools.sh
PROMTOOL=$(./scripts/promtool.sh)
export PROMTOOL

work=$(mktemp -d /tmp/dataplatform-test.XXXXXX)
chmod 755 "$work"  # the cluster runs as the postgres user, which must reach its folder
cleanup() {
  ./scripts/pg.sh stop "$work/pg" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

echo "==> starting a throwaway PostgreSQL"
DATAPLATFORM_TEST_PG_DSN=$(./scripts/pg.sh start "$work/pg")
export DATAPLATFORM_TEST_PG_DSN

echo "==> lint (ruff) and types (mypy)"
.venv/bin/ruff check src tests benchmarks
.venv/bin/ruff format --check src tests benchmarks
.venv/bin/mypy

echo "==> security scans (bandit, detect-secrets)"
./scripts/security-scan.sh

echo "==> tests"
export MPLBACKEND=Agg
.venv/bin/pytest --cov --cov-report=term --cov-report=xml:"$work/coverage.xml" \
  --cov-fail-under=70 "$@"
