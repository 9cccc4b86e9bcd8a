//go:build wasip1 && !tinygo && !go1.24

// Go toolchains before 1.24 ignore //go:wasmexport, which would produce a module without the
// exports the host needs. This file makes that a compile error naming the problem.

package operator

var _ = wasm_operator_sdk_needs_Go_1_24_or_newer_for_go_wasmexport
