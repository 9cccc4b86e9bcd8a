#!/usr/bin/env bash
# Idle CPU of the host: N ring operators (Rust), every one swapped out, then the host's CPU time
# (user + system, from /proc) over a window in which nothing changes. Each binary given is
# measured in turn against the same control plane, so a baseline build and a new one compare in
# one run. Needs a running control plane (`make cluster`) and the example modules (`make build`).
#
#   scripts/idle-cpu.sh N SECONDS BINARY...    prints one line per binary: CPU ms per idle minute
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

[ $# -ge 3 ] || { echo "usage: $0 N SECONDS BINARY..." >&2; exit 2; }
count=$1 seconds=$2
shift 2
export KUBECONFIG=${KUBECONFIG:-$WASM_OPERATOR_CACHE/cluster/kubeconfig}
ring=$CARGO_TARGET_DIR/wasm-guests/wasm32-wasip1/release/operator_ring.wasm
[ -f "$ring" ] || { echo "no $ring: run \`make build\`" >&2; exit 1; }
kubectl apply -f crds/testresource.yaml >/dev/null
kubectl wait --for=condition=Established crd --all --timeout=60s >/dev/null
for i in $(seq 0 $((count - 1))); do
  kubectl create namespace "idle-$i" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
done

work=$(mktemp -d "${TMPDIR:-/tmp}/wasm-operator-idle.XXXXXX")
host_pid=
cleanup() { [ -z "$host_pid" ] || kill "$host_pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

for binary in "$@"; do
  {
    echo "kubeconfig: $KUBECONFIG"
    echo "metricsAddr: 127.0.0.1:0"
    echo "cacheDir: $WASM_OPERATOR_CACHE/modules"
    echo "stateDir: $work/snapshots"
    echo "swapAfter: 1s"
    echo "operators:"
    for i in $(seq 0 $((count - 1))); do
      echo "  - {name: idle-$i, module: $ring, config: {inNamespace: idle-$i, outNamespace: idle-$(((i + 1) % count))}}"
    done
  } >"$work/host.yaml"
  rm -rf "$work/snapshots"
  NO_COLOR=1 "$binary" run --config "$work/host.yaml" >"$work/host.log" 2>&1 &
  host_pid=$!
  until grep -q "metrics server listening on" "$work/host.log"; do
    kill -0 "$host_pid" || { cat "$work/host.log" >&2; exit 1; }
    sleep 0.2
  done
  address=$(sed -n 's/.*metrics server listening on \([0-9.:]*\).*/\1/p' "$work/host.log" | head -n1)
  # Every operator swapped out: nothing is left to run.
  until curl -fsS "http://$address/metrics" | grep -qx "wasm_operator_operators{state=\"swapped\"} $count"; do
    kill -0 "$host_pid" || { cat "$work/host.log" >&2; exit 1; }
    sleep 0.5
  done
  # Nanoseconds on CPU per thread (schedstat: exact, unlike the 10 ms ticks of /proc/PID/stat).
  # Threads come and go (tokio's idle blocking threads exit), so the window's CPU is the sum of
  # each thread's growth, a thread born in the window counting from zero.
  threads() { for task in /proc/"$host_pid"/task/*; do echo "${task##*/} $(cut -d' ' -f1 "$task/schedstat" 2>/dev/null || echo 0)"; done; }
  threads >"$work/before"
  sleep "$seconds" # the measurement window itself
  threads >"$work/after"
  kill "$host_pid"
  wait "$host_pid" 2>/dev/null || true
  host_pid=
  ns=$(awk 'NR == FNR {start[$1] = $2; next} {sum += $2 - ($1 in start ? start[$1] : 0)} END {printf "%d", sum}' "$work/before" "$work/after")
  awk -v ns="$ns" -v s="$seconds" -v b="$binary" -v n="$count" \
    'BEGIN {printf "%s N=%d: %.2f ms CPU per idle minute (%.2f ms in %d s)\n", b, n, ns / 1e6 * 60 / s, ns / 1e6, s}'

done
