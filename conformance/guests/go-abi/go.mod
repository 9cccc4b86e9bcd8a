module wasm-operator.dev/conformance/guests/go-abi

// go 1.22 like the SDK; building for wasip1 with the standard toolchain needs Go >= 1.24.
go 1.22

require wasm-operator.dev/sdk-go v0.0.0

replace wasm-operator.dev/sdk-go => ../../../sdk-go
