#!/usr/bin/env bash
# Runs every test: `make test` calls this.
#
# One control plane is started for the whole run and shared by all test binaries through
# WASM_OPERATOR_KUBECONFIG (each test makes its own namespace). It is tied to this script through
# a pipe on its standard input, so it stops however the script ends.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1; then
  echo "the wasm32-wasip1 Rust target is missing: run \`rustup target add wasm32-wasip1\`" >&2
  exit 1
fi

# Go modules first: they need no cluster and fail fast.
for module in sdk-go operators-go; do
  [ -f "$module/go.mod" ] || continue
  echo "== go vet and go test in $module"
  (cd "$module" && go vet ./... && GOOS=wasip1 GOARCH=wasm go vet ./... && go test ./...)
done

controlplane=$(scripts/controlplane.sh build | tail -n1)
run_dir=$(mktemp -d "${TMPDIR:-/tmp}/wasm-operator-test-cp.XXXXXX")
coproc CONTROLPLANE { exec "$controlplane" run --dir "$run_dir/data" --kubeconfig "$run_dir/kubeconfig" --exit-on-stdin-close >"$run_dir/controlplane.log" 2>&1; }
stop_controlplane() {
  # Closing its standard input asks it to shut down; wait so no process or port is left behind.
  exec {CONTROLPLANE[1]}>&- 2>/dev/null || true
  wait "$CONTROLPLANE_PID" 2>/dev/null || true
  rm -rf "$run_dir"
}
trap stop_controlplane EXIT

start=$SECONDS
deadline=$((SECONDS + 120))
until [ -f "$run_dir/kubeconfig" ]; do
  if ! kill -0 "$CONTROLPLANE_PID" 2>/dev/null; then
    echo "the control plane exited before it was ready:" >&2
    tail -n 40 "$run_dir/controlplane.log" >&2
    exit 1
  fi
  [ $SECONDS -lt $deadline ] || { echo "control plane not ready within 120s" >&2; exit 1; }
  sleep 0.2
done
echo "control plane ready in $((SECONDS - start))s"
export WASM_OPERATOR_KUBECONFIG=$run_dir/kubeconfig
export WASM_OPERATOR_CONTROLPLANE=$controlplane

cargo test --workspace --locked "$@"
