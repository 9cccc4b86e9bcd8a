#!/usr/bin/env bash
# The local Kubernetes control plane (etcd + kube-apiserver + a few controllers, built from Go
# modules in controlplane/).
#
#   scripts/controlplane.sh build   build (or reuse) the binary; prints its path as the last line
#   scripts/controlplane.sh up      start it in the background, wait for /readyz, print `export KUBECONFIG=...`
#   scripts/controlplane.sh down    stop it and wait until it has gone
#
# The binary is cached (see cluster_tool in lib.sh), so only a change to what it is built from
# rebuilds it.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

STATE_DIR=${WASM_OPERATOR_CLUSTER_DIR:-$WASM_OPERATOR_CACHE/cluster}
PID_FILE=$STATE_DIR/controlplane.pid
KUBECONFIG_PATH=$STATE_DIR/kubeconfig

build() {
  cluster_tool .
}

running_pid() {
  [ -f "$PID_FILE" ] || return 1
  local pid
  pid=$(cat "$PID_FILE")
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

up() {
  if pid=$(running_pid); then
    echo "control plane already running (pid $pid)" >&2
    echo "export KUBECONFIG=$KUBECONFIG_PATH"
    return
  fi
  local bin
  bin=$(build | tail -n1)
  mkdir -p "$STATE_DIR"
  rm -f "$KUBECONFIG_PATH"
  local start=$SECONDS
  # setsid: the control plane outlives this script and is not hit by the terminal's Ctrl-C.
  setsid "$bin" run --dir "$STATE_DIR/data" --kubeconfig "$KUBECONFIG_PATH" \
    >"$STATE_DIR/controlplane.log" 2>&1 </dev/null &
  echo $! >"$PID_FILE"
  local deadline=$((SECONDS + 120))
  until [ -f "$KUBECONFIG_PATH" ]; do
    if ! kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
      echo "the control plane exited before it was ready; its log:" >&2
      tail -n 30 "$STATE_DIR/controlplane.log" >&2
      exit 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      echo "the control plane was not ready within 120s; see $STATE_DIR/controlplane.log" >&2
      exit 1
    fi
    sleep 0.2
  done
  echo "control plane ready in $((SECONDS - start))s (log: $STATE_DIR/controlplane.log)" >&2
  echo "export KUBECONFIG=$KUBECONFIG_PATH"
}

down() {
  local pid
  if ! pid=$(running_pid); then
    echo "no control plane running" >&2
    rm -f "$PID_FILE"
    return
  fi
  kill -TERM "$pid"
  local deadline=$((SECONDS + 60))
  while kill -0 "$pid" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then
      echo "control plane (pid $pid) did not stop within 60s; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  rm -f "$PID_FILE"
  echo "control plane stopped" >&2
}

case "${1:-}" in
  build) build ;;
  up) up ;;
  down) down ;;
  *) echo "usage: $0 build|up|down" >&2; exit 2 ;;
esac
