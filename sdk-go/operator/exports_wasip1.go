//go:build wasip1

// The module's exports. They live in this package, not in the operator's main package: an
// operator's main only has to import the SDK (Go >= 1.24 and TinyGo >= 0.34 both export
// //go:wasmexport functions from any package linked into the module).

package operator

// exportABIVersionMarker carries the ABI version in its name; the host never calls it.
//
//go:wasmexport wasm_operator_abi_v1
func exportABIVersionMarker() {}

// exportInit receives the length of the InitInput and returns 0 (Registration written) or 1
// (GuestError written).
//
//go:wasmexport wasm_operator_init
func exportInit(inputLen uint32) uint32 { return handleInit(inputLen) }

// exportReconcile receives the length of the ReconcileRequest and returns 0 (ReconcileResult
// written) or 1 (GuestError written).
//
//go:wasmexport wasm_operator_reconcile
func exportReconcile(inputLen uint32) uint32 { return handleReconcile(inputLen) }
