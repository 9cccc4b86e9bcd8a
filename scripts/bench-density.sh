#!/usr/bin/env bash
# The density benchmark (density/): N = 1, 10, 50, 100 ring instances as native kube-rs and
# controller-runtime processes and in one host (Rust, Go and TinyGo modules, resident and
# swapped); PSS, idle CPU, one-hop latency and startup of each, with ratios against both native
# setups. Writes its section of docs/benchmarks.md. `make bench-density` calls this; `make test`
# runs the test profile (density/tests/short.rs).
#
#   scripts/bench-density.sh [ARGS...]    extra arguments go to wasm-operator-density, e.g.
#                                          --profile quick, --window 20, --counts 1,10,
#                                          --setups kube-rs,host-rust-swapped
#
# Runs as root so that each setup gets a cgroup of its own (CPU to the microsecond, exited
# threads included); otherwise per-thread schedstat is summed and the section says so. The full
# profile takes about 40 minutes on a 2-core machine, plus the release builds the first time.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

use_tinygo
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
export WASM_OPERATOR_CONTROLPLANE=${WASM_OPERATOR_CONTROLPLANE:-$(scripts/controlplane.sh build | tail -n1)}

# Release builds of everything measured: the host and the native kube-rs ring with the same
# profile, the controller-runtime ring as an operator image would build it.
cargo build --locked --profile release-host -p wasm-operator -p density-ring-kube-rs
cargo build --locked -p wasm-operator-density
mkdir -p "$CARGO_TARGET_DIR/density"
(cd density/native-go && go build -trimpath -ldflags="-s -w" -o "$CARGO_TARGET_DIR/density/ring-controller-runtime" .)
export WASM_OPERATOR_BIN=$CARGO_TARGET_DIR/release-host/wasm-operator
export DENSITY_RING_KUBE_RS=$CARGO_TARGET_DIR/release-host/ring-kube-rs
export DENSITY_RING_CONTROLLER_RUNTIME=$CARGO_TARGET_DIR/density/ring-controller-runtime

machine="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores, \
$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), Linux $(uname -r), \
load average $(cut -d' ' -f1 /proc/loadavg) at the start, $(date -u +%Y-%m-%d)"
"$CARGO_TARGET_DIR/debug/wasm-operator-density" --write docs/benchmarks.md \
  --command "make bench-density${*:+ BENCH_ARGS=\"$*\"}" --machine "$machine" "$@"
