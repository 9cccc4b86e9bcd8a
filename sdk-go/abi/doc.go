// Package abi is the Go mirror of the wasm-operator ABI, version 1 (docs/abi.md): the JSON messages
// exchanged with the host, the names of the exports and imports, and the pull-model memory protocol
// that moves bytes across the boundary.
//
// Operator code rarely needs this package: the operator, client, httpclient and log packages wrap
// it. It is public so tests can install a fake host (see package fakehost) and so tools written in
// Go can read and write the same messages.
//
// Inside a Wasm module built for wasip1 the Host is the real set of `wasm_operator` imports. On any
// other target (the native `go test` run) a stand-in answers every host call with a transport error
// and writes log records to standard error, until a test installs its own Host with SetHost.
package abi
