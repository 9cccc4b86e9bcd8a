#!/usr/bin/env bash
# Helm, for the chart in deploy/helm/wasm-operator, built from source with the Go toolchain (no
# release download needed, only the Go module proxy).
#
#   scripts/helm.sh            build (or reuse) helm; prints its path as the last line
#   "$(scripts/helm.sh | tail -n1)" lint deploy/helm/wasm-operator
#
# The binary is cached under $WASM_OPERATOR_CACHE/helm-<version>; the first build takes a few
# minutes, later runs only print the path.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

HELM_VERSION=v4.3.2
HELM_MODULE=helm.sh/helm/v4/cmd/helm
HELM_DIR=$WASM_OPERATOR_CACHE/helm-$HELM_VERSION

if [ ! -x "$HELM_DIR/helm" ]; then
  echo "helm.sh: building helm $HELM_VERSION (the first build takes a few minutes)" >&2
  mkdir -p "$WASM_OPERATOR_CACHE"
  # Built into a temporary directory and moved into place, so an interrupted build is not taken
  # for a finished one.
  tmp=$(mktemp -d "$WASM_OPERATOR_CACHE/helm-build.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  GOBIN=$tmp CGO_ENABLED=0 go install "$HELM_MODULE@$HELM_VERSION"
  chmod 755 "$tmp"
  rm -rf "$HELM_DIR"
  mv "$tmp" "$HELM_DIR"
  trap - EXIT
fi
echo "$HELM_DIR/helm"
