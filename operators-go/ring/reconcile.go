// The reconcile of a TestResource: carry its nonce to the same name in the next namespace.

package main

import (
	"context"
	"encoding/json"
	"fmt"

	"wasm-operator.dev/sdk-go/client"
	"wasm-operator.dev/sdk-go/reconcile"
	"wasm-operator.dev/sdk-go/types"
)

// Reconciler forwards TestResources from Config.InNamespace to Config.OutNamespace.
type Reconciler struct {
	Client client.Client
	Config Config
}

// Reconcile creates the next TestResource, or raises its nonce; a nonce is never lowered, so a
// ring that goes round settles.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	if len(req.Object) == 0 {
		return reconcile.Result{}, nil
	}
	var in TestResource
	if err := json.Unmarshal(req.Object, &in); err != nil {
		return reconcile.Result{}, fmt.Errorf("decoding TestResource: %w", err)
	}
	nonce := in.Spec.Nonce

	var out TestResource
	key := types.NamespacedName{Namespace: r.Config.OutNamespace, Name: req.Name}
	err := r.Client.Get(ctx, key, &out)
	switch {
	case client.IsNotFound(err):
		next := &TestResource{
			ObjectMeta: types.ObjectMeta{Name: req.Name, Namespace: r.Config.OutNamespace},
			Spec:       TestResourceSpec{Nonce: nonce},
		}
		if err := r.Client.Create(ctx, next); err != nil {
			return reconcile.Result{}, fmt.Errorf("creating %s: %w", key, err)
		}
	case err != nil:
		return reconcile.Result{}, fmt.Errorf("reading %s: %w", key, err)
	case out.Spec.Nonce < nonce:
		body, err := json.Marshal(map[string]any{"spec": map[string]any{"nonce": nonce}})
		if err != nil {
			return reconcile.Result{}, err
		}
		target := &TestResource{ObjectMeta: types.ObjectMeta{Name: key.Name, Namespace: key.Namespace}}
		if err := r.Client.Patch(ctx, target, client.RawPatch(client.MergePatchType, body)); err != nil {
			return reconcile.Result{}, fmt.Errorf("raising the nonce of %s: %w", key, err)
		}
	}
	return reconcile.Result{}, nil
}
