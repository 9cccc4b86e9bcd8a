module wasm-operator.dev/operators-go

// go 1.22 like the SDK, so TinyGo releases that run on Go 1.22-1.23 toolchains accept the module;
// building with the standard toolchain for wasip1 still needs Go >= 1.24 (//go:wasmexport).
go 1.22

require wasm-operator.dev/sdk-go v0.0.0

replace wasm-operator.dev/sdk-go => ../sdk-go
