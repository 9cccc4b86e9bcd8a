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

up() {
  if pid=$(running_pid "$PID_FILE"); then
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
  wait_for_file "the control plane" "$(cat "$PID_FILE")" "$KUBECONFIG_PATH" "$STATE_DIR/controlplane.log" 120
  echo "control plane ready in $((SECONDS - start))s (log: $STATE_DIR/controlplane.log)" >&2
  echo "export KUBECONFIG=$KUBECONFIG_PATH"
}

down() {
  stop_background "control plane" "$PID_FILE" 60
}

case "${1:-}" in
  build) build ;;
  up) up ;;
  down) down ;;
  *) echo "usage: $0 build|up|down" >&2; exit 2 ;;
esac
