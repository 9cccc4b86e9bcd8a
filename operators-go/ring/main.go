// Command ring is the ring example operator of docs/examples.md, the density benchmark of the
// original research: N instances of this module, each configured with a namespace to read and the
// next one to write, pass TestResources around a ring of N namespaces. Build it as a reactor
// module:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o ring.wasm .
package main

import (
	"context"

	"wasm-operator.dev/sdk-go/client"
	"wasm-operator.dev/sdk-go/operator"
)

func init() {
	r := &Reconciler{Client: client.New()}
	operator.New().
		// The namespace is the configuration's, known only at init: InNamespaceFrom asks for it then.
		For(&TestResource{}, operator.InNamespaceFrom(func() string { return r.Config.InNamespace })).
		OnInit(func(context.Context) error {
			var cfg Config
			if err := operator.Config(&cfg); err != nil {
				return err
			}
			if err := cfg.validate(); err != nil {
				return err
			}
			r.Config = cfg
			return nil
		}).
		Complete(r)
}

// main never runs in a reactor module; the host calls the exports package operator provides.
func main() {}
