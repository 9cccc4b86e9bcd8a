# Entry points for operator authors and contributors. Expensive builds (the Go-built control plane,
# the cargo target directory) are cached under $(WASM_OPERATOR_CACHE), ~/.cache/wasm-operator by default.
SHELL := bash
.DEFAULT_GOAL := help

.PHONY: help build test demo cluster cluster-down conformance stress

help:
	@echo "make build         build the host (wasm-operator) and the example operators"
	@echo "make test          run every test (starts a local control plane)"
	@echo "make demo          run the demo: control plane, host, operators in Rust and Go"
	@echo "make cluster       start a local control plane in the background"
	@echo "make cluster-down  stop it"
	@echo "make conformance   run the conformance suite"
	@echo "make stress        run the conformance suite repeatedly on a loaded machine"

build:
	@scripts/build.sh release-host
	@source scripts/lib.sh && echo "host: $$CARGO_TARGET_DIR/release-host/wasm-operator" && \
	  echo "Rust operators: $$CARGO_TARGET_DIR/wasm-guests/wasm32-wasip1/release/operator_*.wasm" && \
	  echo "Go operators: $$CARGO_TARGET_DIR/go-guests/operators-go-*.wasm" && \
	  if scripts/tinygo.sh path >/dev/null 2>&1; then echo "TinyGo operators: $$CARGO_TARGET_DIR/tinygo-guests/operators-go-*.wasm"; fi

test:
	@scripts/test.sh

cluster:
	@scripts/controlplane.sh up

cluster-down:
	@scripts/controlplane.sh down

demo:
	@scripts/demo.sh

# Every scenario of conformance/scenarios against the Rust, Go and TinyGo implementations, in both
# passes. CONFORMANCE_SCENARIOS=name,name runs only those.
conformance:
	@source scripts/lib.sh && use_tinygo && \
	  cargo test --locked -p wasm-operator-conformance --test conformance -- --nocapture

# The conformance suite STRESS_RUNS times (default 5) beside CPU hogs, each verdict recorded.
stress:
	@scripts/stress-test.sh $(STRESS_RUNS)
