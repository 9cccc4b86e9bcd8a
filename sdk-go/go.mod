module wasm-operator.dev/sdk-go

// go 1.22, not 1.24: TinyGo 0.34 and 0.35 only run on Go 1.19-1.23 toolchains, and a higher go line
// here would make them refuse the module. Builds with the standard Go toolchain still need Go >= 1.24
// for //go:wasmexport; operator/needs_go124_wasip1.go turns an older toolchain into a clear error.
go 1.22
