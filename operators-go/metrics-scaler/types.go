// The MetricScaler kind (crds/metricscaler.yaml) as this operator reads and writes it.

package main

import (
	"wasm-operator.dev/operators-go/internal/conventions"
	"wasm-operator.dev/sdk-go/types"
)

// MetricScaler scales a workload to keep a Prometheus metric near a target value.
type MetricScaler struct {
	types.TypeMeta
	types.ObjectMeta `json:"metadata"`
	Spec             MetricScalerSpec    `json:"spec"`
	Status           *MetricScalerStatus `json:"status,omitempty"`
}

// GroupVersionKind returns demo.wasm-operator.dev/v1alpha1 MetricScaler.
func (*MetricScaler) GroupVersionKind() types.GroupVersionKind {
	return conventions.GVK("MetricScaler")
}

// MetricScalerSpec says what to scale and on which metric. The pointers are fields the CRD
// defaults, whose absence differs from 0.
type MetricScalerSpec struct {
	TargetRef       TargetRef `json:"targetRef"`
	MetricsURL      string    `json:"metricsUrl"`
	Query           string    `json:"query"`
	TargetValue     float64   `json:"targetValue"`
	MinReplicas     *int32    `json:"minReplicas,omitempty"`
	MaxReplicas     int32     `json:"maxReplicas"`
	IntervalSeconds *int32    `json:"intervalSeconds,omitempty"`
}

// TargetRef names the workload to scale, in the MetricScaler's namespace.
type TargetRef struct {
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind,omitempty"`
	Name       string `json:"name"`
}

// Defaults of the CRD, applied here too for objects that reach the operator without them.
const (
	defaultTargetAPIVersion = "apps/v1"
	defaultTargetKind       = "Deployment"
	defaultMinReplicas      = 1
	defaultIntervalSeconds  = 30
)

func (r TargetRef) withDefaults() TargetRef {
	if r.APIVersion == "" {
		r.APIVersion = defaultTargetAPIVersion
	}
	if r.Kind == "" {
		r.Kind = defaultTargetKind
	}
	return r
}

func (s MetricScalerSpec) minReplicas() int32 {
	if s.MinReplicas == nil {
		return defaultMinReplicas
	}
	return *s.MinReplicas
}

func (s MetricScalerSpec) intervalSeconds() int32 {
	if s.IntervalSeconds == nil {
		return defaultIntervalSeconds
	}
	return *s.IntervalSeconds
}

// MetricScalerStatus is what the operator reports. Fields a reconcile may leave as they were are
// pointers, so "never set" survives as absent. lastError is always written: null clears it in
// the merge patch.
type MetricScalerStatus struct {
	ObservedGeneration int64             `json:"observedGeneration"`
	LastValue          *string           `json:"lastValue,omitempty"`
	CurrentReplicas    *int32            `json:"currentReplicas,omitempty"`
	DesiredReplicas    *int32            `json:"desiredReplicas,omitempty"`
	LastScaleTime      *types.Time       `json:"lastScaleTime,omitempty"`
	LastError          *string           `json:"lastError"`
	Conditions         []types.Condition `json:"conditions"`
}
