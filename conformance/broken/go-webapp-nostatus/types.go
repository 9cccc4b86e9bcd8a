// A deliberately broken copy of operators-go/webapp/types.go, swapped in with `go build -overlay`
// by the conformance suite (conformance/src/subjects.rs, BROKEN_GO_WEBAPP): its WebAppStatus never
// serialises readyReplicas. The suite must report the resulting Go webapp as different from the
// Rust one; a test fails if it stops noticing. Never used outside that test.
package main

import (
	"wasm-operator.dev/operators-go/internal/conventions"
	"wasm-operator.dev/sdk-go/types"
)

// WebApp asks for an image to be run as a Deployment with a Service in front of it.
type WebApp struct {
	types.TypeMeta
	types.ObjectMeta `json:"metadata"`
	Spec             WebAppSpec    `json:"spec"`
	Status           *WebAppStatus `json:"status,omitempty"`
}

// GroupVersionKind returns demo.wasm-operator.dev/v1alpha1 WebApp.
func (*WebApp) GroupVersionKind() types.GroupVersionKind { return conventions.GVK("WebApp") }

// WebAppSpec is what the user wants. Replicas and Port are pointers because the CRD defaults them:
// absent and 0 are different things (0 replicas is valid).
type WebAppSpec struct {
	Image    string `json:"image"`
	Replicas *int32 `json:"replicas,omitempty"`
	Port     *int32 `json:"port,omitempty"`
}

// Defaults of the CRD, applied here too for objects that reach the operator without them.
const (
	defaultReplicas = 1
	defaultPort     = 8080
)

// ReplicasOrDefault returns spec.replicas, or the CRD's default when absent.
func (s WebAppSpec) ReplicasOrDefault() int32 {
	if s.Replicas == nil {
		return defaultReplicas
	}
	return *s.Replicas
}

// PortOrDefault returns spec.port, or the CRD's default when absent.
func (s WebAppSpec) PortOrDefault() int32 {
	if s.Port == nil {
		return defaultPort
	}
	return *s.Port
}

// WebAppStatus is what the operator reports. Every field is always written, so none is omitted.
type WebAppStatus struct {
	ObservedGeneration int64             `json:"observedGeneration"`
	ReadyReplicas      int32             `json:"-"` // the forgotten field
	Conditions         []types.Condition `json:"conditions"`
}
