// The TestResource kind (crds/testresource.yaml), typed for controller-runtime's scheme: the token
// the ring passes on.

package main

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// groupVersion is demo.wasm-operator.dev/v1alpha1.
var groupVersion = schema.GroupVersion{Group: "demo.wasm-operator.dev", Version: "v1alpha1"}

// TestResource carries a nonce; the ring copies it forward, one namespace to the next.
type TestResource struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              TestResourceSpec `json:"spec"`
}

// TestResourceSpec holds the nonce, always sent (0 is a nonce like any other).
type TestResourceSpec struct {
	Nonce int64 `json:"nonce"`
}

// TestResourceList is what a list of TestResources returns (the cache's informer lists them).
type TestResourceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []TestResource `json:"items"`
}

// DeepCopyObject implements runtime.Object (what controller-gen would generate).
func (in *TestResource) DeepCopyObject() runtime.Object {
	out := *in
	in.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	return &out
}

// DeepCopyObject implements runtime.Object.
func (in *TestResourceList) DeepCopyObject() runtime.Object {
	out := *in
	out.Items = make([]TestResource, len(in.Items))
	for i := range in.Items {
		out.Items[i] = *in.Items[i].DeepCopyObject().(*TestResource)
	}
	return &out
}

// addToScheme registers both kinds under groupVersion.
func addToScheme(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(groupVersion, &TestResource{}, &TestResourceList{})
	metav1.AddToGroupVersion(scheme, groupVersion)
	return nil
}
