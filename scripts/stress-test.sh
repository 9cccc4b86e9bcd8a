#!/usr/bin/env bash
# Runs the conformance suite several times while the machine is loaded, to show that its verdict
# does not depend on timing. `make stress` calls this.
#
#   scripts/stress-test.sh [RUNS]     RUNS defaults to 5
#
# Environment: STRESS_WORKERS (default 2 per core) CPU hogs from stress-ng run beside the suite
# (Debian's stress-ng; installed when missing and running as root). The modules, the test binary and
# the control plane are built and started once before the first run, so every run is the suite
# alone under load. Each run's log is kept in the printed directory; the last lines are a table of
# runs (seconds, load average, verdict) and "N passed, N failed".
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

runs=${1:-5}
workers=${STRESS_WORKERS:-$((2 * $(nproc)))}

if ! command -v stress-ng >/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "stress-ng is needed: sudo apt-get install -y stress-ng" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends stress-ng >/dev/null
fi

use_tinygo
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}

log_dir=$(mktemp -d "${TMPDIR:-/tmp}/wasm-operator-stress.XXXXXX")
load_pid=
cleanup() {
  [ -n "$load_pid" ] && kill "$load_pid" 2>/dev/null && wait "$load_pid" 2>/dev/null
  stop_private_controlplane
}
trap cleanup EXIT
start_private_controlplane "$log_dir/controlplane"
export WASM_OPERATOR_KUBECONFIG=$CONTROLPLANE_KUBECONFIG

echo "== building the suite and every module once, unloaded" >&2
cargo test --locked -q -p wasm-operator-conformance --test conformance --no-run
CONFORMANCE_SCENARIOS=counter-state,webapp-create,ring-forward,scaler-scale,abi-memory \
  cargo test --locked -q -p wasm-operator-conformance --test conformance \
  every_scenario_behaves_the_same_in_every_language_and_pass >"$log_dir/warm-up.log" 2>&1 ||
  { echo "the warm-up run failed; see $log_dir/warm-up.log" >&2; exit 1; }

passed=0 failed=0
results=()
for run in $(seq 1 "$runs"); do
  # Bounded: the hogs stop by themselves after an hour even if this script is killed.
  stress-ng --cpu "$workers" --timeout 3600s --quiet &
  load_pid=$!
  start=$SECONDS
  if cargo test --locked -q -p wasm-operator-conformance --test conformance >"$log_dir/run-$run.log" 2>&1; then
    verdict=passed passed=$((passed + 1))
  else
    verdict=FAILED failed=$((failed + 1))
  fi
  load=$(cut -d' ' -f1 /proc/loadavg)
  kill "$load_pid" && wait "$load_pid" 2>/dev/null || true
  load_pid=
  scenarios=$(grep -o 'conformance: [0-9]* scenarios, [0-9]* runs, [0-9]* problems' "$log_dir/run-$run.log" | tail -n1 || true)
  results+=("| $run | $((SECONDS - start)) | $load | ${scenarios#conformance: } | $verdict |")
  echo "run $run: $verdict in $((SECONDS - start))s, load average $load (${scenarios:-no summary}); log: $log_dir/run-$run.log" >&2
done

echo
echo "Conformance suite under load: $runs runs beside stress-ng --cpu $workers on $(nproc) cores."
echo
echo "| run | seconds | load average (1 min) at the end | scenarios, runs, problems | verdict |"
echo "|---:|---:|---:|---|---|"
printf '%s\n' "${results[@]}"
echo
echo "logs: $log_dir"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
