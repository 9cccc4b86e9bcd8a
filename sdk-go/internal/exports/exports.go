// Package exports is how native code reaches what the module's init and reconcile exports run.
// Package operator fills it in; package fakehost calls through it, so a test can drive an
// operator exactly as the host would without importing package operator (or being in it).
package exports

// Init and Reconcile are the bodies of wasm_operator_init and wasm_operator_reconcile: they take
// the byte length of the input, pull it with input_read, and return the ABI return code. They are
// nil when package operator is not linked in.
var (
	Init      func(inputLen uint32) uint32
	Reconcile func(inputLen uint32) uint32
)
