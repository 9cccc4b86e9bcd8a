# Entry points for operator authors and contributors. Expensive builds (the Go-built control plane,
# the cargo target directory) are cached under $(WASM_OPERATOR_CACHE), ~/.cache/wasm-operator by default.
SHELL := bash
.DEFAULT_GOAL := help

.PHONY: help build test test-node demo cluster cluster-down node node-down image conformance stress soak bench-density

help:
	@echo "make build         build the host (wasm-operator) and the example operators"
	@echo "make test          run every test (starts a local control plane)"
	@echo "make demo          run the demo: control plane, host, operators in Rust and Go"
	@echo "make cluster       start a local control plane in the background (NODE=1: with a node, see make node)"
	@echo "make cluster-down  stop it (and its node)"
	@echo "make node          add a node to it: kubelet, containerd, pods run for real (root)"
	@echo "make image         build the host's container image (OCI archive, no container engine needed)"
	@echo "make test-node     run only the deploy tests on a node (kustomize and Helm installs)"
	@echo "make conformance   run the conformance suite"
	@echo "make stress        run the conformance suite repeatedly on a loaded machine"
	@echo "make soak          soak and fault experiments (load, outages, kills, full disk, ...): docs/reliability.md"
	@echo "make bench-density native kube-rs/controller-runtime operators against the host, N=1..100: docs/benchmarks.md"

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
	@if [ -n "$(NODE)" ]; then scripts/node.sh up; fi

cluster-down:
	@scripts/node.sh down
	@scripts/controlplane.sh down

node:
	@scripts/node.sh up

node-down:
	@scripts/node.sh down

image:
	@scripts/image.sh

test-node:
	@scripts/test-node.sh

demo:
	@scripts/demo.sh

# Every scenario of conformance/scenarios against the Rust, Go and TinyGo implementations, in both
# passes. CONFORMANCE_SCENARIOS=name,name runs only those.
conformance:
	@source scripts/lib.sh && use_tinygo && \
	  cargo test --locked -p wasm-operator-conformance --test conformance -- --nocapture

# Soak and fault experiments, full profile; writes docs/reliability.md (root: mounts a tmpfs).
soak:
	@scripts/soak.sh

# Density benchmark, full profile (about 40 min); writes its section of docs/benchmarks.md.
# BENCH_ARGS="--profile quick" for short windows.
bench-density:
	@scripts/bench-density.sh $(BENCH_ARGS)

# The conformance suite STRESS_RUNS times (default 5) beside CPU hogs, each verdict recorded.
stress:
	@scripts/stress-test.sh $(STRESS_RUNS)
