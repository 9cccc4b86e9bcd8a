#!/usr/bin/env bash
# A node for the local cluster (controlplane/node): containerd, runc and the CNI plugins from
# Debian's packages (installed when missing), the kubelet, kube-scheduler and the controllers a
# node needs, a pod network on addresses local to this machine. Pods run for real.
#
#   scripts/node.sh build          build (or reuse) the node and its images; prints the node binary last
#   scripts/node.sh up             add a node to the control plane of `make cluster`, wait until Ready
#   scripts/node.sh down           stop it: pods, components, containerd, mounts and the bridge go
#   scripts/node.sh import FILE..  import OCI image archives (scripts/image.sh) into the node
#                                  (the one of `up`, or the one in $WASM_OPERATOR_NODE_DIR)
#
# Images cannot be pulled here: the node starts with two built from this machine's files,
# localhost/wasm-operator/pause:1 (the pod sandbox) and localhost/wasm-operator/busybox:1 (a
# shell and the usual tools, for trying things out).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

STATE_DIR=${WASM_OPERATOR_CLUSTER_DIR:-$WASM_OPERATOR_CACHE/cluster}
NODE_DIR=${WASM_OPERATOR_NODE_DIR:-$STATE_DIR/node}
PID_FILE=$STATE_DIR/node.pid
DEBIAN_PACKAGES=(containerd runc containernetworking-plugins iproute2 busybox-static)
BUSYBOX_APPLETS=(sh ash cat echo env hostname id ls ps sleep test true false wget nc grep head tail)

build() {
  install_debian_packages node.sh "${DEBIAN_PACKAGES[@]}"
  local ociimage pause
  ociimage=$(cluster_tool ociimage | tail -n1)
  pause=$(cluster_tool pause | tail -n1)
  mkdir -p "$(dirname "${NODE_IMAGES[0]}")"
  "$ociimage" --name localhost/wasm-operator/pause:1 --out "${NODE_IMAGES[0]}" \
    --add "$pause:/pause:0755" --entrypoint '["/pause"]' --user 65535:65535
  local links=()
  for applet in "${BUSYBOX_APPLETS[@]}"; do links+=(--symlink "/bin/$applet:busybox"); done
  "$ociimage" --name localhost/wasm-operator/busybox:1 --out "${NODE_IMAGES[1]}" \
    --add /bin/busybox:/bin/busybox:0755 "${links[@]}" --dir /tmp:1777 --cmd '["sh"]'
  cluster_tool node
}

up() {
  if pid=$(running_pid "$PID_FILE"); then
    echo "node already running (pid $pid)" >&2
    return
  fi
  [ -f "$STATE_DIR/kubeconfig" ] || { echo "no control plane is running: start one with \`make cluster\`" >&2; exit 1; }
  local bin image_args=()
  bin=$(build | tail -n1)
  for image in "${NODE_IMAGES[@]}"; do image_args+=(--image "$image"); done
  local start=$SECONDS
  rm -f "$NODE_DIR/ready"
  setsid "$bin" run --controlplane-dir "$STATE_DIR/data" --dir "$NODE_DIR" "${image_args[@]}" \
    >"$STATE_DIR/node.log" 2>&1 </dev/null &
  echo $! >"$PID_FILE"
  wait_for_file "the node" "$(cat "$PID_FILE")" "$NODE_DIR/ready" "$STATE_DIR/node.log" 240
  echo "node ready in $((SECONDS - start))s (log: $STATE_DIR/node.log, components' logs: $NODE_DIR/logs)" >&2
}

down() {
  stop_background "node" "$PID_FILE" 120
}

import() {
  [ -f "$NODE_DIR/ready" ] || { echo "no node is running: start one with \`make node\`" >&2; exit 1; }
  "$(cluster_tool node | tail -n1)" import --dir "$NODE_DIR" "$@"
  echo "imported $*" >&2
}

case "${1:-}" in
  build) build ;;
  up) up ;;
  down) down ;;
  import) shift; import "$@" ;;
  *) echo "usage: $0 build|up|down|import FILE..." >&2; exit 2 ;;
esac
