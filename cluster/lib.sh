# shellcheck shell=bash
# Helpers of cluster/up.sh and cluster/down.sh: numbered steps that log to their own files, daemons
# started and stopped by recorded PID, the machine-wide record, config templates.
# shellcheck source=cluster/settings.sh
source "$(dirname "${BASH_SOURCE[0]}")/settings.sh"

BIN=${CLUSTER_BIN:-$REPO/.tools/cluster/bin}
PID_DIR=$RECORD_DIR/pids
STEP_NO=0

# step NAME FUNCTION [ARGS...]: run one step with its output in $LOG_DIR/NN-NAME.log. A failure prints
# the step, its log's path and the log's tail, and stops the script. The function runs in a background
# subshell so that `set -e` holds inside it (bash ignores -e in functions called from a condition).
step() {
  local name=$1 start=$SECONDS log
  shift
  STEP_NO=$((STEP_NO + 1))
  log=$(printf '%s/%02d-%s.log' "$LOG_DIR" "$STEP_NO" "$name")
  printf '  %-26s' "$name"
  (
    set -euo pipefail
    "$@"
  ) >"$log" 2>&1 </dev/null &
  if wait $!; then
    printf 'ok %4ds\n' $((SECONDS - start))
  else
    printf 'FAILED\n'
    {
      echo "${STEP_OWNER:-make cluster}: step '$name' failed; its log is $log:"
      tail -n 30 "$log" | sed 's/^/  | /'
    } >&2
    exit 1
  fi
}

# wait_for SECONDS WHAT COMMAND...: retry COMMAND every half second until it succeeds.
wait_for() {
  local timeout=$1 what=$2 deadline=$((SECONDS + $1))
  shift 2
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      echo "timed out after ${timeout}s waiting for $what"
      return 1
    fi
    sleep 0.5
  done
}

# render TEMPLATE OUT: replace every @NAME@ with the value of the shell variable NAME.
render() {
  local text name
  text=$(<"$1")
  for name in $(grep -o '@[A-Z_]*@' "$1" | sort -u | tr -d @); do
    [[ -v $name ]] || { echo "render: $1 uses @$name@, which is not set" >&2; return 1; }
    text=${text//@$name@/${!name}}
  done
  mkdir -p "$(dirname "$2")"
  printf '%s\n' "$text" >"$2"
}

# start_daemon NAME BINARY ARGS...: start in its own session (so nothing that ends the calling shell
# ends it), output to $LOG_DIR/NAME.log, PID and binary recorded machine-wide.
start_daemon() {
  local name=$1 bin=$2
  shift 2
  mkdir -p "$PID_DIR"
  setsid "$bin" "$@" >>"$LOG_DIR/$name.log" 2>&1 </dev/null &
  echo $! >"$PID_DIR/$name"
  echo "$bin" >"$PID_DIR/$name.exe"
  echo "started $name (pid $!): $bin $*"
}

# The PID of a recorded daemon if that process is still the binary we started (PIDs get reused).
daemon_pid() {
  local name=$1 pid exe
  [[ -f $PID_DIR/$name ]] || return 1
  pid=$(<"$PID_DIR/$name")
  exe=$(<"$PID_DIR/$name.exe")
  [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == "$(readlink -f "$exe")" ]] || return 1
  echo "$pid"
}

# stop_daemon NAME [GRACE]: SIGTERM, then SIGKILL after GRACE seconds; forget the PID.
stop_daemon() {
  local name=$1 grace=${2:-20} pid deadline
  if pid=$(daemon_pid "$name"); then
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + grace))
    while [[ -e /proc/$pid ]] && ((SECONDS < deadline)); do sleep 0.2; done
    if [[ -e /proc/$pid ]]; then
      echo "$name (pid $pid) ignored SIGTERM for ${grace}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      while [[ -e /proc/$pid ]]; do sleep 0.1; done
    fi
    echo "stopped $name (pid $pid)"
  fi
  rm -f "$PID_DIR/$name" "$PID_DIR/$name.exe"
}

# The state directory of the cluster the machine-wide record describes (possibly another clone's).
recorded_state_dir() {
  [[ -f $RECORD_DIR/state_dir ]] && cat "$RECORD_DIR/state_dir"
}

kubectl_() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

# What KUBECONFIG points at: `local` (this machine's cluster: its apiserver address) or `kind:NAME` (a
# kind context, as GitHub Actions' kind job has). Anything else is refused: images could not be loaded.
cluster_target() {
  local server context
  server=$("$BIN/kubectl" config view --minify -o jsonpath='{.clusters[0].cluster.server}')
  context=$("$BIN/kubectl" config current-context)
  if [[ $server == "https://$NODE_IP:$APISERVER_PORT" ]]; then
    echo local
  elif [[ $context == kind-* ]]; then
    echo "kind:${context#kind-}"
  else
    echo "KUBECONFIG's context $context ($server) is neither this machine's cluster nor kind:" \
      "there is no way to load the locally built images into it" >&2
    return 1
  fi
}
