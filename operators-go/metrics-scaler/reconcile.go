// The reconcile of a MetricScaler, step by step as docs/examples.md numbers them.

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"wasm-operator.dev/operators-go/internal/conventions"
	"wasm-operator.dev/sdk-go/client"
	"wasm-operator.dev/sdk-go/events"
	"wasm-operator.dev/sdk-go/httpclient"
	"wasm-operator.dev/sdk-go/reconcile"
	"wasm-operator.dev/sdk-go/types"
)

// metricsTimeout bounds the metrics query.
const metricsTimeout = 5 * time.Second

// Reconciler reconciles MetricScalers.
type Reconciler struct {
	Client   client.Client
	Recorder *events.Recorder
	Now      func() time.Time
}

// measurement is what one reconcile found out: a metric value and the scale it implies, or why
// there is none (unavailable).
type measurement struct {
	value       string // the metric as Prometheus wrote it
	current     int32  // the target's replicas before this reconcile
	desired     int32
	unavailable string // lastError; "" when the metric was available
}

// Reconcile measures, scales when needed, reports, and asks to run again after intervalSeconds
// whatever happened, since the metric changes without any Kubernetes event.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	if len(req.Object) == 0 {
		return reconcile.Result{}, nil
	}
	scaler := &MetricScaler{}
	if err := json.Unmarshal(req.Object, scaler); err != nil {
		return reconcile.Result{}, fmt.Errorf("decoding MetricScaler: %w", err)
	}
	spec := scaler.Spec
	spec.TargetRef = spec.TargetRef.withDefaults()

	m, err := r.measure(ctx, scaler.Namespace, spec)
	if err != nil {
		return reconcile.Result{}, err
	}
	scaled := false
	if m.unavailable == "" && m.desired != m.current {
		if err := r.scale(ctx, scaler, spec.TargetRef, m); err != nil {
			return reconcile.Result{}, err
		}
		scaled = true
	}
	if err := r.writeStatus(ctx, scaler, req.Object, m, scaled); err != nil {
		return reconcile.Result{}, err
	}
	return reconcile.Result{RequeueAfter: time.Duration(spec.intervalSeconds()) * time.Second}, nil
}

// measure runs steps 1 to 4 up to the decision: query the metric, read the target's replicas,
// compute the desired count. Only Kubernetes failures other than a missing target are errors;
// everything else makes the metric unavailable.
func (r *Reconciler) measure(ctx context.Context, namespace string, spec MetricScalerSpec) (measurement, error) {
	var m measurement
	resp, err := httpclient.Do(ctx, httpclient.Request{
		Method:  "GET",
		URL:     queryURL(spec.MetricsURL, spec.Query),
		Headers: map[string]string{"accept": "application/json"},
		Timeout: metricsTimeout,
	})
	if err != nil {
		m.unavailable = err.Error()
		return m, nil
	}
	value, number, reason := sampleOf(resp)
	if reason != "" {
		m.unavailable = reason
		return m, nil
	}
	m.value = value

	target := types.NewUnstructured(spec.TargetRef.APIVersion, spec.TargetRef.Kind)
	key := types.NamespacedName{Namespace: namespace, Name: spec.TargetRef.Name}
	if err := r.Client.Get(ctx, key, target); client.IsNotFound(err) {
		m.unavailable = fmt.Sprintf("target %s %s not found", spec.TargetRef.Kind, spec.TargetRef.Name)
		return m, nil
	} else if err != nil {
		return m, fmt.Errorf("reading target %s %s: %w", spec.TargetRef.Kind, key, err)
	}
	m.current = 1
	if replicas, ok := target.NestedInt64("spec", "replicas"); ok {
		m.current = int32(replicas)
	}

	if spec.TargetValue <= 0 {
		m.unavailable = "targetValue must be positive"
		return m, nil
	}
	m.desired = desiredReplicas(m.current, number, spec.TargetValue, spec.minReplicas(), spec.MaxReplicas)
	return m, nil
}

// desiredReplicas is ceil(max(current, 1) * value / targetValue), in float64 and in exactly that
// order so both implementations round alike, then raised to minReplicas and capped at maxReplicas
// (the cap wins should the bounds cross).
func desiredReplicas(current int32, value, targetValue float64, minReplicas, maxReplicas int32) int32 {
	desired := math.Ceil(float64(max(current, 1)) * value / targetValue)
	desired = math.Min(math.Max(desired, float64(minReplicas)), float64(maxReplicas))
	return int32(desired)
}

// scale merge-patches the target's spec.replicas and records why.
func (r *Reconciler) scale(ctx context.Context, scaler *MetricScaler, ref TargetRef, m measurement) error {
	target := types.NewUnstructured(ref.APIVersion, ref.Kind)
	target.Namespace, target.Name = scaler.Namespace, ref.Name
	body, err := json.Marshal(map[string]any{"spec": map[string]any{"replicas": m.desired}})
	if err != nil {
		return err
	}
	if err := r.Client.Patch(ctx, target, client.RawPatch(client.MergePatchType, body)); err != nil {
		return fmt.Errorf("scaling %s %s: %w", ref.Kind, ref.Name, err)
	}
	r.Recorder.Eventf(scaler, nil, types.EventTypeNormal, "Scaled", conventions.EventAction,
		"scaled %s %s from %d to %d replicas (metric value %s)", ref.Kind, ref.Name, m.current, m.desired, m.value)
	return nil
}

// writeStatus reports the measurement. An available metric sets every field and clears lastError;
// an unavailable one sets lastError and keeps the rest of the current status.
func (r *Reconciler) writeStatus(ctx context.Context, scaler *MetricScaler, object json.RawMessage, m measurement, scaled bool) error {
	now := r.Now()
	status := MetricScalerStatus{}
	if scaler.Status != nil {
		status = *scaler.Status
	}
	status.ObservedGeneration = scaler.Generation
	ready := types.Condition{Type: conventions.ReadyCondition}
	if m.unavailable == "" {
		value, current, desired := m.value, m.current, m.desired
		status.LastValue, status.CurrentReplicas, status.DesiredReplicas = &value, &current, &desired
		if scaled {
			scaleTime := types.NewTime(now)
			status.LastScaleTime = &scaleTime
		}
		status.LastError = nil
		ready.Status, ready.Reason, ready.Message = types.ConditionTrue, "MetricAvailable", "metric value "+m.value
	} else {
		lastError := m.unavailable
		status.LastError = &lastError
		ready.Status, ready.Reason, ready.Message = types.ConditionFalse, "MetricUnavailable", m.unavailable
	}
	ready, _ = conventions.Transition(status.Conditions, ready, now)
	status.Conditions = []types.Condition{ready}

	current, err := conventions.CurrentStatus(object)
	if err != nil {
		return err
	}
	target := &MetricScaler{ObjectMeta: types.ObjectMeta{Name: scaler.Name, Namespace: scaler.Namespace}}
	if err := conventions.WriteStatus(ctx, r.Client, target, current, status); err != nil {
		return fmt.Errorf("writing status: %w", err)
	}
	return nil
}
