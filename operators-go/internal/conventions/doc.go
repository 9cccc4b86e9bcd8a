// Package conventions implements the rules docs/examples.md sets for every example operator, so
// that the four operators apply them identically: the API group of the example CRDs, when and how
// status is written, how a condition's lastTransitionTime moves, and the shape of Events.
package conventions

import "wasm-operator.dev/sdk-go/types"

// Group and Version of the example CRDs (crds/ at the repository root).
const (
	Group   = "demo.wasm-operator.dev"
	Version = "v1alpha1"
)

// GVK returns the GroupVersionKind of an example kind.
func GVK(kind string) types.GroupVersionKind {
	return types.GroupVersionKind{Group: Group, Version: Version, Kind: kind}
}
