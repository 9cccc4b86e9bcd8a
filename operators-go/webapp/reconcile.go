// The reconcile of a WebApp, step by step as docs/examples.md numbers them.

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"wasm-operator.dev/operators-go/internal/conventions"
	"wasm-operator.dev/sdk-go/client"
	"wasm-operator.dev/sdk-go/controllerutil"
	"wasm-operator.dev/sdk-go/events"
	"wasm-operator.dev/sdk-go/reconcile"
	"wasm-operator.dev/sdk-go/types"
)

// registryFinalizer holds a WebApp until its registry entry, which no owner reference can
// collect, has been deleted.
const registryFinalizer = "demo.wasm-operator.dev/registry"

// Reconciler reconciles WebApps.
type Reconciler struct {
	Client   client.Client
	Recorder *events.Recorder
	Config   Config
	Now      func() time.Time
}

// Reconcile works from the object in the request (the host's cached copy), as the spec says.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	if len(req.Object) == 0 {
		return reconcile.Result{}, nil // gone: the finalizer has already done its work
	}
	object := req.Object
	app, err := decodeWebApp(object)
	if err != nil {
		return reconcile.Result{}, err
	}

	// 1. Deletion.
	if app.IsBeingDeleted() {
		return reconcile.Result{}, r.finalize(ctx, object, app)
	}
	// 2. Finalizer; go on with what the API server returned.
	if !controllerutil.ContainsFinalizer(app, registryFinalizer) {
		if object, err = updateFinalizers(ctx, r.Client, object, withFinalizer(registryFinalizer)); err != nil {
			return reconcile.Result{}, fmt.Errorf("adding finalizer: %w", err)
		}
		if app, err = decodeWebApp(object); err != nil {
			return reconcile.Result{}, err
		}
	}
	// 3-5. Deployment, Service, registry entry.
	readyReplicas, err := r.applyChildren(ctx, app)
	if err != nil {
		return reconcile.Result{}, err
	}
	// 6. Status, and an Event when Ready flips.
	return reconcile.Result{}, r.writeStatus(ctx, app, object, readyReplicas)
}

// finalize removes the registry entry (already gone is fine) and then the finalizer.
func (r *Reconciler) finalize(ctx context.Context, object json.RawMessage, app *WebApp) error {
	if !controllerutil.ContainsFinalizer(app, registryFinalizer) {
		return nil
	}
	entry := &types.ConfigMap{ObjectMeta: types.ObjectMeta{
		Name: registryEntryName(app.Namespace, app.Name), Namespace: r.Config.RegistryNamespace,
	}}
	if err := r.Client.Delete(ctx, entry); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting registry entry %s/%s: %w", entry.Namespace, entry.Name, err)
	}
	if _, err := updateFinalizers(ctx, r.Client, object, withoutFinalizer(registryFinalizer)); err != nil {
		return fmt.Errorf("removing finalizer: %w", err)
	}
	return nil
}

// applyChildren server-side applies the Deployment, the Service and the registry entry, in that
// order, and returns the applied Deployment's ready replicas.
func (r *Reconciler) applyChildren(ctx context.Context, app *WebApp) (int32, error) {
	deployment, err := desiredDeployment(app)
	if err != nil {
		return 0, err
	}
	if err := r.apply(ctx, deployment); err != nil {
		return 0, err
	}
	service, err := desiredService(app)
	if err != nil {
		return 0, err
	}
	if err := r.apply(ctx, service); err != nil {
		return 0, err
	}
	if err := r.apply(ctx, desiredRegistryEntry(app, r.Config.RegistryNamespace)); err != nil {
		return 0, err
	}
	if deployment.Status == nil {
		return 0, nil
	}
	return deployment.Status.ReadyReplicas, nil
}

func (r *Reconciler) apply(ctx context.Context, obj types.Object) error {
	err := r.Client.Patch(ctx, obj, client.Apply, client.ForceOwnership, client.FieldOwner(operatorName))
	if err != nil {
		meta := obj.GetObjectMeta()
		return fmt.Errorf("applying %s %s/%s: %w", obj.GroupVersionKind().Kind, meta.Namespace, meta.Name, err)
	}
	return nil
}

// writeStatus reports readiness. object is the WebApp as the API server last sent it, whose
// status is the one to compare with.
func (r *Reconciler) writeStatus(ctx context.Context, app *WebApp, object json.RawMessage, readyReplicas int32) error {
	replicas := app.Spec.ReplicasOrDefault()
	ready := types.Condition{
		Type:               conventions.ReadyCondition,
		Status:             types.ConditionFalse,
		Reason:             "DeploymentNotReady",
		Message:            fmt.Sprintf("%d/%d replicas ready", readyReplicas, replicas),
		ObservedGeneration: app.Generation,
	}
	if readyReplicas >= replicas {
		ready.Status, ready.Reason = types.ConditionTrue, "DeploymentReady"
	}
	var previous []types.Condition
	if app.Status != nil {
		previous = app.Status.Conditions
	}
	ready, flipped := conventions.Transition(previous, ready, r.Now())
	desired := WebAppStatus{ObservedGeneration: app.Generation, ReadyReplicas: readyReplicas, Conditions: []types.Condition{ready}}

	current, err := conventions.CurrentStatus(object)
	if err != nil {
		return err
	}
	target := &WebApp{ObjectMeta: types.ObjectMeta{Name: app.Name, Namespace: app.Namespace}}
	if err := conventions.WriteStatus(ctx, r.Client, target, current, desired); err != nil {
		return fmt.Errorf("writing status: %w", err)
	}
	if flipped {
		r.Recorder.Event(app, types.EventTypeNormal, ready.Reason, conventions.EventAction, ready.Message)
	}
	return nil
}

func decodeWebApp(object json.RawMessage) (*WebApp, error) {
	app := &WebApp{}
	if err := json.Unmarshal(object, app); err != nil {
		return nil, fmt.Errorf("decoding WebApp: %w", err)
	}
	return app, nil
}
