// The TestResource kind (crds/testresource.yaml): the token passed around the ring.

package main

import (
	"wasm-operator.dev/operators-go/internal/conventions"
	"wasm-operator.dev/sdk-go/types"
)

// TestResource carries a nonce; the ring copies it forward, one namespace to the next.
type TestResource struct {
	types.TypeMeta
	types.ObjectMeta `json:"metadata"`
	Spec             TestResourceSpec `json:"spec"`
}

// GroupVersionKind returns demo.wasm-operator.dev/v1alpha1 TestResource.
func (*TestResource) GroupVersionKind() types.GroupVersionKind {
	return conventions.GVK("TestResource")
}

// TestResourceSpec holds the nonce, always sent (0 is a nonce like any other).
type TestResourceSpec struct {
	Nonce int64 `json:"nonce"`
}
