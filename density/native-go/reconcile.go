// The reconcile of a TestResource, as the ring example does it (docs/examples.md, "ring"): read the
// copy in the out namespace straight from the API server, create it or raise its nonce.

package main

import (
	"context"
	"encoding/json"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Reconciler forwards TestResources from InNamespace to OutNamespace.
type Reconciler struct {
	// Cache reads the watched objects (InNamespace only); Reader reads the API server directly,
	// as the Wasm ring's `get` does, so no informer is started for OutNamespace.
	Cache        client.Reader
	Reader       client.Reader
	Writer       client.Writer
	OutNamespace string
}

// Reconcile creates the next TestResource, or raises its nonce; a nonce is never lowered, so a
// ring that goes round settles.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var in TestResource
	if err := r.Cache.Get(ctx, req.NamespacedName, &in); err != nil {
		// Gone: nothing to carry forward.
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	nonce := in.Spec.Nonce
	key := types.NamespacedName{Namespace: r.OutNamespace, Name: req.Name}
	var out TestResource
	err := r.Reader.Get(ctx, key, &out)
	switch {
	case apierrors.IsNotFound(err):
		next := &TestResource{
			TypeMeta:   metav1.TypeMeta{APIVersion: groupVersion.String(), Kind: "TestResource"},
			ObjectMeta: metav1.ObjectMeta{Name: req.Name, Namespace: r.OutNamespace},
			Spec:       TestResourceSpec{Nonce: nonce},
		}
		if err := r.Writer.Create(ctx, next); err != nil {
			return ctrl.Result{}, fmt.Errorf("creating %s: %w", key, err)
		}
	case err != nil:
		return ctrl.Result{}, fmt.Errorf("reading %s: %w", key, err)
	case out.Spec.Nonce < nonce:
		body, err := json.Marshal(map[string]any{"spec": map[string]any{"nonce": nonce}})
		if err != nil {
			return ctrl.Result{}, err
		}
		target := &TestResource{ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace}}
		if err := r.Writer.Patch(ctx, target, client.RawPatch(types.MergePatchType, body)); err != nil {
			return ctrl.Result{}, fmt.Errorf("raising the nonce of %s: %w", key, err)
		}
	}
	return ctrl.Result{}, nil
}
