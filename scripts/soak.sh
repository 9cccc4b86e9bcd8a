#!/usr/bin/env bash
# The soak and fault experiments (soak/) in their full profile: 100 ring operators in Rust, Go and
# TinyGo under 1,000 changes/s, an API server outage, an etcd restart, SIGKILLs mid-swap-out and
# mid-reconcile, a full and a read-only state directory, memory pressure, and slow, failing and
# hanging egress. Writes docs/reliability.md. `make soak` calls this; `make test` runs the short
# profile of the same experiments (soak/tests/short.rs).
#
#   scripts/soak.sh [ARGS...]    extra arguments go to wasm-operator-soak, e.g. --only load
#
# Runs as root (the state directory of one experiment is a tmpfs it mounts). About 15 minutes on
# a 2-core machine, plus the release build of the host the first time.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

[ "$(id -u)" -eq 0 ] || { echo "make soak mounts a tmpfs for its disk-full experiment: run it as root" >&2; exit 1; }
use_tinygo
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
export WASM_OPERATOR_CONTROLPLANE=${WASM_OPERATOR_CONTROLPLANE:-$(scripts/controlplane.sh build | tail -n1)}

cargo build --locked --profile release-host -p wasm-operator
cargo build --locked -p wasm-operator-soak
machine="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores, \
$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), Linux $(uname -r), \
load average $(cut -d' ' -f1 /proc/loadavg) at the start, $(date -u +%Y-%m-%d)"
"$CARGO_TARGET_DIR/debug/wasm-operator-soak" --profile full \
  --host "$CARGO_TARGET_DIR/release-host/wasm-operator" \
  --write docs/reliability.md --command "make soak" --machine "$machine" "$@"
