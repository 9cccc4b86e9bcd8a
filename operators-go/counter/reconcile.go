// The reconcile of a Counter: note each new generation and show the memory in the status.

package main

import (
	"context"
	"encoding/json"
	"fmt"

	"wasm-operator.dev/operators-go/internal/conventions"
	"wasm-operator.dev/sdk-go/client"
	"wasm-operator.dev/sdk-go/reconcile"
	"wasm-operator.dev/sdk-go/types"
)

// Reconciler counts the generations of Counters it sees.
type Reconciler struct {
	Client client.Client
	memory *memory
}

// NewReconciler returns a Reconciler with an empty memory, as a fresh instance has.
func NewReconciler(c client.Client) *Reconciler {
	return &Reconciler{Client: c, memory: newMemory()}
}

// Reconcile records a generation not seen before and writes the status that shows it.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	key := req.Namespace + "/" + req.Name
	if len(req.Object) == 0 {
		r.memory.forget(key)
		return reconcile.Result{}, nil
	}
	var counter Counter
	if err := json.Unmarshal(req.Object, &counter); err != nil {
		return reconcile.Result{}, fmt.Errorf("decoding Counter: %w", err)
	}
	if r.memory.hasSeen(key, counter.Generation) {
		return reconcile.Result{}, nil
	}
	sighting := r.memory.see(key, counter.Generation)

	current, err := conventions.CurrentStatus(req.Object)
	if err != nil {
		return reconcile.Result{}, err
	}
	target := &Counter{ObjectMeta: types.ObjectMeta{Name: req.Name, Namespace: req.Namespace}}
	if err := conventions.WriteStatus(ctx, r.Client, target, current, sighting.status()); err != nil {
		return reconcile.Result{}, fmt.Errorf("writing status: %w", err)
	}
	r.memory.record(sighting)
	return reconcile.Result{}, nil
}
