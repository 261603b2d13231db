# Shared by the throwaway-server scripts (pg.sh, s3.sh, mlflow-server.sh); sourced, not run.
# The sourcing script defines `die MESSAGE` (its own name in the message) before sourcing this.

# True when something listens on 127.0.0.1:PORT (bash's /dev/tcp connect succeeds).
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A random free port in 20000-59999.
pick_port() {
  local port tries=0
  while [ $tries -lt 200 ]; do
    port=$(( 20000 + RANDOM % 40000 ))
    if ! port_in_use "$port"; then echo "$port"; return 0; fi
    tries=$((tries + 1))
  done
  die "no free port found"
}

# True when PIDFILE names a live process.
pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Stop the process group of DIR/PIDFILE (TERM, then KILL after 10 s) and remove DIR; only a DIR
# holding MARKER (made by the same script) is touched. A missing DIR is already stopped.
stop_service_dir() {
  local dir=$1 pidfile=$2 marker=$3 script=$4
  [ -d "$dir" ] || return 0
  [ -f "$dir/$marker" ] || die "$dir was not created by $script; not touching it"
  if pid_alive "$dir/$pidfile"; then
    local pid i
    pid=$(cat "$dir/$pidfile")
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do pid_alive "$dir/$pidfile" || break; sleep 0.2; done
    if pid_alive "$dir/$pidfile"; then kill -KILL -- "-$pid" 2>/dev/null || true; fi
  fi
  rm -rf "$dir"
}
