// Command webapp is the webapp example operator of docs/examples.md: a WebApp becomes a
// Deployment and a Service it owns, plus an entry in a registry namespace that a finalizer cleans
// up. Build it as a reactor module:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o webapp.wasm .
package main

import (
	"context"
	"time"

	"wasm-operator.dev/operators-go/internal/conventions"
	"wasm-operator.dev/sdk-go/client"
	"wasm-operator.dev/sdk-go/operator"
	"wasm-operator.dev/sdk-go/types"
)

// operatorName is the example's name: its field manager, its Events' reporter and its label value,
// whatever name the host gives the instance.
const operatorName = "webapp"

func init() {
	c := client.New()
	r := &Reconciler{Client: c, Recorder: conventions.NewRecorder(c, operatorName, time.Now), Now: time.Now}
	operator.New().
		For(&WebApp{}, operator.WithPredicates(operator.GenerationChanged)).
		Owns(&types.Deployment{}).
		Owns(&types.Service{}).
		OnInit(func(context.Context) error {
			var cfg Config
			if err := operator.Config(&cfg); err != nil {
				return err
			}
			r.Config = cfg.withDefaults()
			return nil
		}).
		Complete(r)
}

// main never runs in a reactor module; the host calls the exports package operator provides.
func main() {}
