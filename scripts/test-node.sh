#!/usr/bin/env bash
# Runs only the deploy tests on a real node (host/tests/node_deploy.rs): `make test-node`. A
# control plane and a node of its own are started and stopped with this script; `make test`
# runs the same tests as its last step.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}

# Built first, so that the node does not wait for them.
cargo test --locked --test node_deploy --no-run
scripts/helm.sh >/dev/null

run_dir=$(mktemp -d "${TMPDIR:-/tmp}/wasm-operator-test-node.XXXXXX")
cleanup() { stop_private_node; stop_private_controlplane; rm -rf "$run_dir"; }
trap cleanup EXIT
start_private_controlplane "$run_dir"
export WASM_OPERATOR_KUBECONFIG=$CONTROLPLANE_KUBECONFIG
start_private_node "$run_dir"
cargo test --locked --test node_deploy -- --ignored "$@" || { node_logs; exit 1; }
stop_private_node
node_leftovers "$WASM_OPERATOR_NODE_DIR"
