// Command minimal is the smallest useful wasm-operator module in Go: for every ConfigMap labelled
// wasm-operator.dev/mirror=true it keeps a copy named <name>-mirror, owned by the original so it
// is garbage-collected with it. Build it with either toolchain:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o minimal.wasm ./examples/minimal
//	tinygo build -target=wasip1 -buildmode=c-shared -no-debug -o minimal.wasm ./examples/minimal
package main

import (
	"context"
	"time"

	"wasm-operator.dev/sdk-go/client"
	"wasm-operator.dev/sdk-go/controllerutil"
	"wasm-operator.dev/sdk-go/events"
	"wasm-operator.dev/sdk-go/log"
	"wasm-operator.dev/sdk-go/operator"
	"wasm-operator.dev/sdk-go/reconcile"
	"wasm-operator.dev/sdk-go/types"
)

const mirrorLabel = "wasm-operator.dev/mirror"

// MirrorReconciler keeps <name>-mirror in step with each labelled ConfigMap.
type MirrorReconciler struct {
	Client   client.Client
	Recorder *events.Recorder
}

// Reconcile applies the mirror; deleting it is left to the garbage collector via the owner
// reference.
func (r *MirrorReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	logger := log.FromContext(ctx)

	var source types.ConfigMap
	if err := r.Client.Get(ctx, req.NamespacedName, &source, client.FromCache); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err) // deleted: nothing to do
	}
	if source.Labels[mirrorLabel] != "true" {
		return reconcile.Result{}, nil // the mirror itself, or a ConfigMap that was unlabelled
	}

	mirror := &types.ConfigMap{
		ObjectMeta: types.ObjectMeta{Name: source.Name + "-mirror", Namespace: source.Namespace},
		Data:       source.Data,
	}
	if err := controllerutil.SetControllerReference(&source, mirror); err != nil {
		return reconcile.Result{}, reconcile.TerminalError(err)
	}
	if err := r.Client.Patch(ctx, mirror, client.Apply, client.ForceOwnership); err != nil {
		return reconcile.Result{}, err
	}
	logger.Info("mirrored", "keys", len(source.Data))
	r.Recorder.Eventf(&source, mirror, types.EventTypeNormal, "Mirrored", "Apply", "copied %d keys to %s", len(source.Data), mirror.Name)
	// Re-check now and then, to repair a mirror edited by hand even if no event arrives.
	return reconcile.Result{RequeueAfter: 10 * time.Minute}, nil
}

func init() {
	c := client.New()
	operator.New().
		For(&types.ConfigMap{}, operator.WithLabelSelector(mirrorLabel+"=true")).
		Owns(&types.ConfigMap{}).
		Complete(&MirrorReconciler{Client: c, Recorder: events.NewRecorder(c)})
}

// main never runs in a reactor module (-buildmode=c-shared); the host calls the exports instead.
func main() {}
