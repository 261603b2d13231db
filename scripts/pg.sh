#!/usr/bin/env bash
# Throwaway PostgreSQL 15 cluster for tests and local runs.
#
#   scripts/pg.sh start DIR [PORT]   init (if needed) and start a cluster in DIR; prints its conninfo
#   scripts/pg.sh stop DIR           stop it and remove DIR
#   scripts/pg.sh conninfo DIR       print the conninfo of a running cluster again
#
# The cluster listens on 127.0.0.1 only (plus a unix socket in DIR), has a superuser `postgres`
# with a random password (scram-sha-256), and runs with fsync=off: never keep data in it.
# As root, the binaries run as the `postgres` OS user (initdb refuses root) and DIR is chowned to it.
#
# TLS: with PG_SSL_DIR=FOLDER holding server.crt (PEM, may include the chain) and server.key, a
# NEW cluster gets copies of both in its data folder and `ssl = on` (plaintext is still accepted:
# the client's sslmode decides). An existing cluster keeps its configuration.
set -euo pipefail

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
MARKER=.dataplatform-pg  # only a DIR holding this file is ever removed by `stop`

die() { echo "pg.sh: $*" >&2; exit 1; }

as_pg() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# shellcheck source=lib/service.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/service.sh"  # port_in_use, pick_port, ...

print_conninfo() {
  local dir=$1
  printf "host=127.0.0.1 port=%s dbname=postgres user=postgres password=%s\n" \
    "$(cat "$dir/port")" "$(cat "$dir/password")"
}

check_ssl_dir() {
  [ -z "${PG_SSL_DIR:-}" ] && return 0
  [ -f "$PG_SSL_DIR/server.crt" ] && [ -f "$PG_SSL_DIR/server.key" ] \
    || die "PG_SSL_DIR=$PG_SSL_DIR must hold server.crt and server.key"
}

configure_ssl() {
  local dir=$1
  [ -z "${PG_SSL_DIR:-}" ] && return 0
  # The server refuses a key readable by others; owned by the cluster owner, mode 600.
  install -m 600 "$PG_SSL_DIR/server.crt" "$dir/data/server.crt"
  install -m 600 "$PG_SSL_DIR/server.key" "$dir/data/server.key"
  if [ "$(id -u)" = 0 ]; then
    chown postgres: "$dir/data/server.crt" "$dir/data/server.key"
  fi
  cat >> "$dir/data/postgresql.conf" <<EOF
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
EOF
}

init_cluster() {
  local dir=$1
  check_ssl_dir
  mkdir -p "$dir"
  touch "$dir/$MARKER"
  if [ "$(id -u)" = 0 ]; then
    chown postgres: "$dir"
    as_pg test -w "$dir" || die "user postgres cannot write $dir (is a parent folder private?)"
  fi
  chmod 700 "$dir"
  local password
  password=$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')
  umask 077
  printf '%s\n' "$password" > "$dir/password"
  # The password file is readable by the cluster owner only while initdb runs.
  local pwfile="$dir/pwfile"
  printf '%s\n' "$password" > "$pwfile"
  [ "$(id -u)" = 0 ] && chown postgres: "$pwfile"
  as_pg "$PG_BIN/initdb" --pgdata="$dir/data" --username=postgres --pwfile="$pwfile" \
    --auth=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1 \
    || { rm -f "$pwfile"; cat "$dir/initdb.log" >&2; die "initdb failed"; }
  rm -f "$pwfile"
  local socket_dir="'$dir'"
  # A unix socket path is limited to ~107 bytes: skip the socket when DIR is too long.
  [ ${#dir} -gt 80 ] && socket_dir="''"
  cat >> "$dir/data/postgresql.conf" <<EOF

# --- scripts/pg.sh: throwaway test cluster ---
listen_addresses = '127.0.0.1'
unix_socket_directories = $socket_dir
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
log_min_messages = warning
EOF
  configure_ssl "$dir"
}

cmd_start() {
  local dir=${1:?usage: pg.sh start DIR [PORT]} port=${2:-}
  dir=$(realpath -m "$dir")
  [ -x "$PG_BIN/initdb" ] || die "PostgreSQL binaries not found in $PG_BIN (set PG_BIN)"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    [ -d "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ] && [ ! -f "$dir/$MARKER" ] \
      && die "$dir exists and is not empty"
    init_cluster "$dir"
  elif [ -n "${PG_SSL_DIR:-}" ] && ! grep -q "^ssl = on" "$dir/data/postgresql.conf"; then
    echo "pg.sh: $dir exists without TLS; PG_SSL_DIR applies to new clusters only" >&2
  fi
  if as_pg "$PG_BIN/pg_ctl" --pgdata="$dir/data" status >/dev/null 2>&1; then
    print_conninfo "$dir"
    return 0
  fi
  local attempt
  for attempt in 1 2 3 4 5; do
    local p=${port:-$(pick_port)}
    if as_pg "$PG_BIN/pg_ctl" --pgdata="$dir/data" --log="$dir/server.log" --wait --timeout=60 \
        -o "-p $p" start >/dev/null 2>&1; then
      (umask 077; echo "$p" > "$dir/port")
      print_conninfo "$dir"
      return 0
    fi
    # Retry on another random port only when none was asked for and the bind lost a race.
    if [ -n "$port" ] || ! grep -q "could not bind\|Address already in use" "$dir/server.log"; then
      break
    fi
    echo "pg.sh: port $p taken, retrying ($attempt)" >&2
  done
  tail -n 20 "$dir/server.log" >&2 || true
  die "could not start PostgreSQL in $dir"
}

cmd_stop() {
  local dir=${1:?usage: pg.sh stop DIR}
  dir=$(realpath -m "$dir")
  [ -d "$dir" ] || return 0
  [ -f "$dir/$MARKER" ] || die "$dir was not created by pg.sh; not touching it"
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_pg "$PG_BIN/pg_ctl" --pgdata="$dir/data" --mode=immediate --wait stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
}

cmd_conninfo() {
  local dir=${1:?usage: pg.sh conninfo DIR}
  [ -f "$dir/port" ] || die "no running cluster in $dir"
  print_conninfo "$(realpath -m "$dir")"
}

case "${1:-}" in
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  conninfo) shift; cmd_conninfo "$@" ;;
  *) echo "usage: $0 start DIR [PORT] | stop DIR | conninfo DIR" >&2; exit 2 ;;
esac
