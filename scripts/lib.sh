# Shared settings for the scripts: where expensive builds are cached between runs.
# Sourced, not run.
WASM_OPERATOR_CACHE=${WASM_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wasm-operator}
export WASM_OPERATOR_CACHE
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export REPO_ROOT
# The cargo target directory lives in the cache so a fresh clone (CI) reuses earlier builds.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$WASM_OPERATOR_CACHE/target}

# use_tinygo: installs TinyGo when it is missing (scripts/tinygo.sh) and exports
# WASM_OPERATOR_TINYGO, the command the test harness builds TinyGo modules with.
use_tinygo() {
  local output
  output=$("$REPO_ROOT/scripts/tinygo.sh" install) || return
  WASM_OPERATOR_TINYGO=$(tail -n1 <<<"$output")
  export WASM_OPERATOR_TINYGO
}

# start_private_controlplane DIR: starts a control plane that lives exactly as long as the calling
# script (tied through a pipe on its standard input, so it stops however the script ends), waits
# until it is ready and sets CONTROLPLANE_KUBECONFIG. The caller must `trap stop_private_controlplane EXIT`.
start_private_controlplane() {
  local run_dir=$1 bin
  mkdir -p "$run_dir"
  bin=$("$REPO_ROOT/scripts/controlplane.sh" build | tail -n1)
  CONTROLPLANE_BIN=$bin
  CONTROLPLANE_RUN_DIR=$run_dir
  coproc CONTROLPLANE { exec "$bin" run --dir "$run_dir/data" --kubeconfig "$run_dir/kubeconfig" --exit-on-stdin-close >"$run_dir/controlplane.log" 2>&1; }
  local start=$SECONDS deadline=$((SECONDS + 120))
  until [ -f "$run_dir/kubeconfig" ]; do
    if ! kill -0 "$CONTROLPLANE_PID" 2>/dev/null; then
      echo "the control plane exited before it was ready:" >&2
      tail -n 40 "$run_dir/controlplane.log" >&2
      return 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      echo "the control plane was not ready within 120s; see $run_dir/controlplane.log" >&2
      return 1
    fi
    sleep 0.2
  done
  echo "control plane ready in $((SECONDS - start))s" >&2
  CONTROLPLANE_KUBECONFIG=$run_dir/kubeconfig
}

stop_private_controlplane() {
  # Closing its standard input asks it to shut down; wait so no process or port is left behind.
  [ -n "${CONTROLPLANE_PID:-}" ] || return 0
  exec {CONTROLPLANE[1]}>&- 2>/dev/null || true
  wait "$CONTROLPLANE_PID" 2>/dev/null || true
}
