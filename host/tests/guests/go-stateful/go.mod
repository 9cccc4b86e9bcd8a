module wasm-operator.dev/test-guest-go-stateful

go 1.24
