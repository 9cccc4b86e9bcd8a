#!/usr/bin/env bash
# The demo (`make demo`): a local control plane, the host, and example operators in Rust and Go
# reconciling sample objects. Prints what happened, then cleans everything up.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

for tool in cargo go kubectl python3; do
  command -v "$tool" >/dev/null || { echo "the demo needs $tool on PATH" >&2; exit 1; }
done
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1; then
  echo "adding the wasm32-wasip1 Rust target" >&2
  rustup target add wasm32-wasip1
fi

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# wait_until DESCRIPTION SECONDS COMMAND...: polls COMMAND until it succeeds, or fails the demo.
wait_until() {
  local what=$1 timeout=$2 deadline
  shift 2
  deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      echo "timed out after ${timeout}s waiting for $what; the objects' status:" >&2
      kubectl -n demo get webapps,metricscalers,counters -o custom-columns=KIND:.kind,NAME:.metadata.name,STATUS:.status >&2 || true
      echo "the host's last log lines (whole log kept in $work/host.log):" >&2
      tail -n 20 "$work/host.log" >&2 || true
      exit 1
    fi
    sleep 0.3
  done
}

work=$(mktemp -d "${TMPDIR:-/tmp}/wasm-operator-demo.XXXXXX")
host_pid="" metrics_pid="" controlplane_build=""
cleanup() {
  local status=$?
  # The host shuts down gracefully on SIGTERM; the metrics server just dies of it.
  if [ -n "$host_pid" ]; then kill -TERM "$host_pid" 2>/dev/null; wait "$host_pid" 2>/dev/null || true; fi
  if [ -n "$metrics_pid" ]; then kill "$metrics_pid" 2>/dev/null; wait "$metrics_pid" 2>/dev/null || true; fi
  if [ -n "$controlplane_build" ]; then kill "$controlplane_build" 2>/dev/null || true; fi
  stop_private_controlplane
  if [ "$status" -eq 0 ]; then rm -rf "$work"; else echo "logs kept in $work" >&2; fi
}
trap cleanup EXIT

say "Building the host, the example operators and the control plane (cached after the first run)"
# The control plane (Go) builds beside the Rust build, at a lower priority: both are CPU-bound, and
# the Rust build's tail is a chain of large crates one after another (Cranelift, wasmtime, the
# host), so the Go build fills the cores that chain leaves idle instead of slowing it down.
nice -n 10 "$REPO_ROOT/scripts/controlplane.sh" build >"$work/controlplane-build.log" 2>&1 &
controlplane_build=$!
"$REPO_ROOT/scripts/build.sh" dev
wait "$controlplane_build" || { cat "$work/controlplane-build.log" >&2; exit 1; }
host_bin=$CARGO_TARGET_DIR/debug/wasm-operator
guests=$CARGO_TARGET_DIR/wasm-guests
go_out=$CARGO_TARGET_DIR/go-guests
"$host_bin" validate "$guests/wasm32-wasip1/release/operator_webapp.wasm" "$guests/wasm32-wasip1/release/operator_ring.wasm" \
  "$go_out/operators-go-metrics-scaler.wasm" "$go_out/operators-go-counter.wasm"

say "Starting a local control plane"
start_private_controlplane "$work/cp"
export KUBECONFIG=$CONTROLPLANE_KUBECONFIG
kubectl apply -f crds/webapp.yaml -f crds/metricscaler.yaml -f crds/testresource.yaml -f crds/counter.yaml >/dev/null
kubectl wait --for=condition=Established crd --all --timeout=60s >/dev/null
for ns in demo demo-registry ring-0 ring-1 ring-2; do kubectl create namespace "$ns" >/dev/null; done

say "Starting a metrics API on loopback (it reports 25 jobs/s; the scaler targets 10 per replica)"
python3 demo/metrics_server.py "$work/metrics.port" 25 &
metrics_pid=$!
wait_until "the metrics server" 10 test -f "$work/metrics.port"
metrics_url="http://127.0.0.1:$(cat "$work/metrics.port")"

say "Starting the host with 6 operators: webapp and a ring of 3 (Rust), metrics-scaler and counter (Go)"
cat >"$work/host.yaml" <<YAML
kubeconfig: $KUBECONFIG
metricsAddr: 127.0.0.1:0
cacheDir: $WASM_OPERATOR_CACHE/modules
stateDir: $work/snapshots
swapAfter: 3s   # short for the demo; the default is 60s
egressAllowNetworks: [127.0.0.1/32]   # the metrics API is on loopback, which is denied by default
operators:
  - {name: webapp, module: $guests/wasm32-wasip1/release/operator_webapp.wasm, config: {registryNamespace: demo-registry}}
  - {name: metrics-scaler, module: $go_out/operators-go-metrics-scaler.wasm, allowHttp: ["$metrics_url/"]}
  - {name: counter, module: $go_out/operators-go-counter.wasm}
  - {name: ring-0, module: $guests/wasm32-wasip1/release/operator_ring.wasm, config: {inNamespace: ring-0, outNamespace: ring-1}}
  - {name: ring-1, module: $guests/wasm32-wasip1/release/operator_ring.wasm, config: {inNamespace: ring-1, outNamespace: ring-2}}
  - {name: ring-2, module: $guests/wasm32-wasip1/release/operator_ring.wasm, config: {inNamespace: ring-2, outNamespace: ring-0}}
YAML
NO_COLOR=1 RUST_LOG=${RUST_LOG:-info} "$host_bin" run --config "$work/host.yaml" >"$work/host.log" 2>&1 &
host_pid=$!
wait_until "the host to start its metrics server" 60 grep -q "metrics server listening on" "$work/host.log"
metrics_addr=$(sed -n 's/.*metrics server listening on \([0-9.:]*\).*/\1/p' "$work/host.log" | head -n1)
wait_until "the host to be ready" 60 curl -fsS "http://$metrics_addr/readyz"

say "Applying sample objects"
sed "s#__METRICS_URL__#$metrics_url#" demo/samples.yaml | kubectl apply -f -

say "Waiting for the operators to reconcile"
wait_until "webapp to create Deployment demo/shop" 60 kubectl -n demo get deployment shop
wait_until "webapp to report status" 60 sh -c "kubectl -n demo get webapp shop -o jsonpath='{.status.observedGeneration}' | grep -q 1"
wait_until "metrics-scaler to scale demo/queue-worker to 3" 60 sh -c "kubectl -n demo get deployment queue-worker -o jsonpath='{.spec.replicas}' | grep -qx 3"
wait_until "counter to record generation 1" 60 sh -c "kubectl -n demo get counter visits -o jsonpath='{.status.totalSeen}' | grep -qx 1"
wait_until "the ring to carry the nonce around" 60 kubectl -n ring-2 get testresource token
kubectl -n demo patch counter visits --type merge -p '{"spec":{"note":"second"}}' >/dev/null
wait_until "counter to record generation 2" 60 sh -c "kubectl -n demo get counter visits -o jsonpath='{.status.totalSeen}' | grep -qx 2"

# metric NAME LABELS: one sample from the host's /metrics, e.g. metric swap_outs_total 'operator="counter"'.
metric() {
  curl -fsS "http://$metrics_addr/metrics" | awk -v series="wasm_operator_$1{$2}" '$1 == series { print $2 }'
}

say "Swapping: idle operators go to disk after 3s and come back on the next event"
swapped_out() { [ "$(metric memory_bytes "operator=\"$1\"")" = 0 ] && [ -n "$(metric swap_outs_total "operator=\"$1\"")" ]; }
wait_until "counter to be swapped out" 60 swapped_out counter
echo "operators swapped out: $(metric operators 'state="swapped"') of 6"
echo "counter: swap-outs $(metric swap_outs_total 'operator="counter"'), memory $(metric memory_bytes 'operator="counter"') bytes, snapshot $(metric snapshot_bytes 'operator="counter"') bytes on disk"
ls -l "$work/snapshots"
kubectl -n demo patch counter visits --type merge -p '{"spec":{"note":"third"}}' >/dev/null
# totalSeen lives only in the operator's memory: 3 means the state came back from disk intact.
wait_until "counter, swapped in, to record generation 3" 60 sh -c "kubectl -n demo get counter visits -o jsonpath='{.status.totalSeen}' | grep -qx 3"
echo "counter: swap-ins $(metric swap_ins_total 'operator="counter"'), status $(kubectl -n demo get counter visits -o jsonpath='{.status}')"

say "What happened"
kubectl -n demo get webapps,metricscalers,counters,deployments,services
kubectl -n demo-registry get configmaps -l app.kubernetes.io/name=webapp
kubectl get testresources -A
echo
echo "WebApp status:       $(kubectl -n demo get webapp shop -o jsonpath='{.status}')"
echo "MetricScaler status: $(kubectl -n demo get metricscaler queue-worker -o jsonpath='{.status}')"
echo "Counter status:      $(kubectl -n demo get counter visits -o jsonpath='{.status}')"
echo
kubectl -n demo get events.events.k8s.io -o custom-columns=REASON:.reason,OBJECT:.regarding.name,NOTE:.note
echo
echo "Host metrics (excerpt):"
curl -fsS "http://$metrics_addr/metrics" | grep -E '^wasm_operator_(reconciles_total|watches_open|memory_bytes|swap_outs_total|swap_ins_total|operators)' | head -n 40

say "Cleaning up"
