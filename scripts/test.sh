#!/usr/bin/env bash
# Runs every test: `make test` calls this.
#
# One control plane is started for the whole run and shared by all test binaries through
# WASM_OPERATOR_KUBECONFIG (each test makes its own namespace).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1; then
  echo "the wasm32-wasip1 Rust target is missing: run \`rustup target add wasm32-wasip1\`" >&2
  exit 1
fi

# TinyGo builds the third implementation of every Go operator; installed into the cache on first use.
use_tinygo
# Zig's clang builds the C operators (operators-c/); installed into the cache from PyPI on first use.
use_zig

# Go modules first: they need no cluster and fail fast.
for module in sdk-go operators-go; do
  [ -f "$module/go.mod" ] || continue
  echo "== go vet and go test in $module"
  (cd "$module" && go vet ./... && GOOS=wasip1 GOARCH=wasm go vet ./... && go test ./...)
done
# The native controller-runtime ring of the density benchmark (a module of its own, native only).
echo "== go vet and go test in density/native-go"
(cd density/native-go && go vet ./... && go test ./...)
# The conformance ABI guest only builds for wasip1 (its exports are //go:wasmexport).
echo "== go vet in conformance/guests/go-abi"
(cd conformance/guests/go-abi && GOOS=wasip1 GOARCH=wasm go vet ./...)

# The target directory is shared by every checkout on this machine (see lib.sh); incremental
# state would grow it by gigabytes per change and only speeds up rebuilds of an edited tree.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}

run_dir=$(mktemp -d "${TMPDIR:-/tmp}/wasm-operator-test.XXXXXX")
cleanup() { stop_private_node; stop_private_controlplane; rm -rf "$run_dir"; }
trap cleanup EXIT
start_private_controlplane "$run_dir"
export WASM_OPERATOR_KUBECONFIG=$CONTROLPLANE_KUBECONFIG
export WASM_OPERATOR_CONTROLPLANE=$CONTROLPLANE_BIN

echo "== unit tests of the Rust example operators (native target, fake host)"
cargo test --locked -q -p operator-webapp -p operator-metrics-scaler -p operator-ring -p operator-counter

echo "== cargo test"
# The soak harness's short profile (soak/tests/short.rs) runs the host binary this `cargo test`
# builds for the host's own end-to-end tests.
export WASM_OPERATOR_BIN=${WASM_OPERATOR_BIN:-$CARGO_TARGET_DIR/debug/wasm-operator}
# The density benchmark's test profile (density/tests/short.rs) builds its native kube-rs ring
# (debug) and controller-runtime ring (go build) itself: DENSITY_RING_KUBE_RS and
# DENSITY_RING_CONTROLLER_RUNTIME are for passing other builds.
# The default members: the native crates. Wasm guests are workspace members built for
# wasm32-wasip1 by the tests themselves (test-support builds them from source).
cargo test --locked "$@"

# The deploy path on a real node: kustomize and Helm installs of the host's image, built from the
# binary just tested (host/tests/node_deploy.rs). Its tests are `#[ignore]`d in a plain `cargo
# test` because they need this node; `make test-node` runs them alone.
if [ $# -eq 0 ]; then
  echo "== the deploy path on a real node"
  scripts/helm.sh >/dev/null
  start_private_node "$run_dir"
  cargo test --locked --test node_deploy -- --ignored || { node_logs; exit 1; }
  stop_private_node
  node_leftovers "$WASM_OPERATOR_NODE_DIR"
fi
