# Entry points for operator authors and contributors. Expensive builds (the Go-built control plane,
# the cargo target directory) are cached under $(WASM_OPERATOR_CACHE), ~/.cache/wasm-operator by default.
SHELL := bash
.DEFAULT_GOAL := help

.PHONY: help build test demo cluster cluster-down conformance

help:
	@echo "make build         build the host (wasm-operator) and the example operators"
	@echo "make test          run every test (starts a local control plane)"
	@echo "make demo          run the demo: control plane, host, operators in Rust and Go"
	@echo "make cluster       start a local control plane in the background"
	@echo "make cluster-down  stop it"
	@echo "make conformance   run the conformance suite"

build:
	@source scripts/lib.sh && cargo build --workspace --locked --profile release-host
	@source scripts/lib.sh && echo "host binary: $$CARGO_TARGET_DIR/release-host/wasm-operator"

test:
	@scripts/test.sh

cluster:
	@scripts/controlplane.sh up

cluster-down:
	@scripts/controlplane.sh down

demo:
	@echo "make demo: not implemented yet (needs the Rust SDK and the example operators)" >&2; exit 1

conformance:
	@echo "make conformance: not implemented yet (needs the conformance suite)" >&2; exit 1
