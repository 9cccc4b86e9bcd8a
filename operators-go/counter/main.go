// Command counter is the counter example operator of docs/examples.md: deliberately stateful, it
// remembers every generation of every Counter it has seen and shows a checksum of that memory in
// each Counter's status, so state lost across a swap shows at once. Build it as a reactor module:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o counter.wasm .
package main

import (
	"wasm-operator.dev/sdk-go/client"
	"wasm-operator.dev/sdk-go/operator"
)

// counter is the module's one reconciler; its memory is the instance's.
var counter = NewReconciler(client.New())

func init() {
	operator.New().
		For(&Counter{}, operator.WithPredicates(operator.GenerationChanged)).
		Complete(counter)
}

// main never runs in a reactor module; the host calls the exports package operator provides.
func main() {}
