// Options of the client verbs, in controller-runtime's style: each option is a value that knows
// which verbs it applies to, so passing InNamespace to Get does not compile.

package client

import (
	"wasm-operator.dev/sdk-go/types"
)

type getOptions struct{ cached bool }

type listOptions struct {
	namespace     string
	labelSelector string
	fieldSelector string
	cached        bool
}

type patchOptions struct {
	fieldManager string
	force        bool
}

type deleteOptions struct{ propagation PropagationPolicy }

// GetOption modifies a Get.
type GetOption interface{ applyToGet(*getOptions) }

// ListOption modifies a List.
type ListOption interface{ applyToList(*listOptions) }

// PatchOption modifies a Patch.
type PatchOption interface{ applyToPatch(*patchOptions) }

// DeleteOption modifies a Delete.
type DeleteOption interface{ applyToDelete(*deleteOptions) }

// FromCache lets the host answer a Get or List from its shared cache when this operator watches
// the kind; otherwise the request goes to the API server as usual. Cached reads are cheaper but may
// lag behind writes made a moment ago.
var FromCache = cacheOption{}

type cacheOption struct{}

func (cacheOption) applyToGet(o *getOptions)   { o.cached = true }
func (cacheOption) applyToList(o *listOptions) { o.cached = true }

// InNamespace restricts a List to one namespace.
type InNamespace string

func (n InNamespace) applyToList(o *listOptions) { o.namespace = string(n) }

// MatchingLabels restricts a List to objects carrying all these labels.
type MatchingLabels map[string]string

func (m MatchingLabels) applyToList(o *listOptions) {
	o.labelSelector = joinSelectors(o.labelSelector, types.SelectorFromLabels(m))
}

// MatchingLabelSelector restricts a List with a selector in Kubernetes syntax, e.g.
// "app=web,tier in (front,back)".
type MatchingLabelSelector string

func (s MatchingLabelSelector) applyToList(o *listOptions) {
	o.labelSelector = joinSelectors(o.labelSelector, string(s))
}

// MatchingFields restricts a List by field values, e.g. {"metadata.name": "x"}.
type MatchingFields map[string]string

func (m MatchingFields) applyToList(o *listOptions) {
	o.fieldSelector = joinSelectors(o.fieldSelector, types.SelectorFromLabels(m))
}

func joinSelectors(a, b string) string {
	if a == "" {
		return b
	}
	if b == "" {
		return a
	}
	return a + "," + b
}

// FieldOwner sets the field manager of a Patch. Without it, a server-side apply uses the operator's
// name and other patches send none (the host then uses the operator's name).
type FieldOwner string

func (f FieldOwner) applyToPatch(o *patchOptions) { o.fieldManager = string(f) }

// ForceOwnership makes a server-side apply take over fields other managers own instead of failing
// with a conflict.
var ForceOwnership = forceOption{}

type forceOption struct{}

func (forceOption) applyToPatch(o *patchOptions) { o.force = true }

// PropagationPolicy says what happens to an object's dependents when it is deleted.
type PropagationPolicy string

// The propagation policies.
const (
	PropagationBackground PropagationPolicy = "Background" // delete now, dependents afterwards
	PropagationForeground PropagationPolicy = "Foreground" // delete dependents first
	PropagationOrphan     PropagationPolicy = "Orphan"     // keep dependents, drop their owner references
)

func (p PropagationPolicy) applyToDelete(o *deleteOptions) { o.propagation = p }
