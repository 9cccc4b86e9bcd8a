// Command metrics-scaler is the metrics-scaler example operator of docs/examples.md: it reads a
// Prometheus metric over HTTP and scales a workload's replicas to keep it near a target value,
// checking again every intervalSeconds. Build it as a reactor module:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o metrics-scaler.wasm .
package main

import (
	"time"

	"wasm-operator.dev/operators-go/internal/conventions"
	"wasm-operator.dev/sdk-go/client"
	"wasm-operator.dev/sdk-go/operator"
)

// operatorName is the example's name, which its Events report whatever name the host gives the
// instance.
const operatorName = "metrics-scaler"

func init() {
	c := client.New()
	operator.New().
		For(&MetricScaler{}, operator.WithPredicates(operator.GenerationChanged)).
		Complete(&Reconciler{Client: c, Recorder: conventions.NewRecorder(c, operatorName, time.Now), Now: time.Now})
}

// main never runs in a reactor module; the host calls the exports package operator provides.
func main() {}
