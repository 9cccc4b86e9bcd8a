// The Counter kind (crds/counter.yaml) as this operator reads and writes it.

package main

import (
	"wasm-operator.dev/operators-go/internal/conventions"
	"wasm-operator.dev/sdk-go/types"
)

// Counter is any object whose generations the operator counts; its spec is free-form.
type Counter struct {
	types.TypeMeta
	types.ObjectMeta `json:"metadata"`
	Status           *CounterStatus `json:"status,omitempty"`
}

// GroupVersionKind returns demo.wasm-operator.dev/v1alpha1 Counter.
func (*Counter) GroupVersionKind() types.GroupVersionKind { return conventions.GVK("Counter") }

// CounterStatus shows the operator's memory of the object, and a checksum of everything it has
// seen, so a test can tell at a glance whether that memory survived.
type CounterStatus struct {
	ObservedGenerations []int64 `json:"observedGenerations"`
	TotalSeen           int64   `json:"totalSeen"`
	Checksum            string  `json:"checksum"`
}
