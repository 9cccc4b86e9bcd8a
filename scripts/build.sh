#!/usr/bin/env bash
# Builds the host and every example operator (Rust, Go, TinyGo when it is installed by
# scripts/tinygo.sh, and C when Zig is installed by scripts/zig.sh). `make build` and the demo use
# it.
#
#   scripts/build.sh [PROFILE]   PROFILE: dev (default; shares artefacts with `make test`) or release-host
#
# Outputs (under $CARGO_TARGET_DIR, i.e. $WASM_OPERATOR_CACHE/target by default):
#   <profile dir>/wasm-operator                              the host
#   wasm-guests/wasm32-wasip1/release/operator_<name>.wasm    Rust operators
#   go-guests/operators-go-<name>.wasm                        Go operators
#   tinygo-guests/operators-go-<name>.wasm                    the same Go operators built with TinyGo
#   c-guests/operators-c-<name>.wasm                          C operators (operators-c/<name>)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

profile=${1:-dev}
examples=(webapp metrics-scaler ring counter)

cargo build --locked --profile "$profile" -p wasm-operator

rust_packages=()
for name in "${examples[@]}"; do rust_packages+=(-p "operator-$name"); done
CARGO_TARGET_DIR=$CARGO_TARGET_DIR/wasm-guests cargo build --locked --release --target wasm32-wasip1 "${rust_packages[@]}"

mkdir -p "$CARGO_TARGET_DIR/go-guests"
for name in "${examples[@]}"; do
  (cd "operators-go/$name" && GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath \
    -o "$CARGO_TARGET_DIR/go-guests/operators-go-$name.wasm" .)
done

if tinygo=$(scripts/tinygo.sh path 2>/dev/null); then
  mkdir -p "$CARGO_TARGET_DIR/tinygo-guests"
  for name in "${examples[@]}"; do
    (cd "operators-go/$name" && "$tinygo" build -target=wasip1 -buildmode=c-shared -no-debug \
      -o "$CARGO_TARGET_DIR/tinygo-guests/operators-go-$name.wasm" .)
  done
else
  echo "TinyGo is not installed, so no TinyGo builds (scripts/tinygo.sh install adds it)" >&2
fi

if zig_cc=$(scripts/zig.sh path 2>/dev/null); then
  mkdir -p "$CARGO_TARGET_DIR/c-guests"
  for dir in operators-c/*/; do
    name=$(basename "$dir")
    make --no-print-directory -C "$dir" CC="$zig_cc" OUT="$CARGO_TARGET_DIR/c-guests/operators-c-$name.wasm"
  done
else
  echo "Zig is not installed, so no C builds (scripts/zig.sh install adds it)" >&2
fi
