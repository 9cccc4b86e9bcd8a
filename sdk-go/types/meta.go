// Package types holds Kubernetes object types that compile under TinyGo: the metadata every object
// shares (ObjectMeta, OwnerReference, Condition, ...), a map-backed Unstructured object for any kind,
// and typed structs for the kinds operators most often manage: core ConfigMap, Secret, Service,
// Namespace, Pod, ServiceAccount and PersistentVolumeClaim; apps Deployment, StatefulSet and
// DaemonSet; batch Job and CronJob; rbac Role, ClusterRole, RoleBinding and ClusterRoleBinding;
// and events.k8s.io/v1 Event. Each has a ...List type for client.List.
//
// The typed structs model a useful subset of their kind, not all of it, and every field is
// optional (omitempty or a pointer) so that a server-side apply claims only the fields you set.
// Because unmodelled fields are dropped when an object is decoded, change objects you did not
// create with Patch (client.Apply or client.MergeFrom) rather than Update: an Update would send the
// object without the fields this package does not know. Use Unstructured when you need them all.
//
// To use your own kind, write a struct that embeds TypeMeta and ObjectMeta and give it a
// GroupVersionKind method; docs/sdk-go.md walks through it.
package types

import (
	"sort"
	"strings"
)

// GroupVersionKind identifies a kind: Group "" is the core API group.
type GroupVersionKind struct {
	Group   string
	Version string
	Kind    string
}

// GVK builds a GroupVersionKind from an apiVersion such as "apps/v1" or "v1" and a kind.
func GVK(apiVersion, kind string) GroupVersionKind {
	group, version := "", apiVersion
	if i := strings.IndexByte(apiVersion, '/'); i >= 0 {
		group, version = apiVersion[:i], apiVersion[i+1:]
	}
	return GroupVersionKind{Group: group, Version: version, Kind: kind}
}

// APIVersion returns "group/version", or just "version" for the core group.
func (g GroupVersionKind) APIVersion() string {
	if g.Group == "" {
		return g.Version
	}
	return g.Group + "/" + g.Version
}

func (g GroupVersionKind) String() string { return g.APIVersion() + ", Kind=" + g.Kind }

// Object is what the client reads and writes. Typed structs get GetObjectMeta and
// SetGroupVersionKind from the embedded ObjectMeta and TypeMeta; each type adds GroupVersionKind,
// which returns the kind it models (whatever TypeMeta currently holds).
type Object interface {
	GetObjectMeta() *ObjectMeta
	GroupVersionKind() GroupVersionKind
	SetGroupVersionKind(GroupVersionKind)
}

// ObjectList is what client.List fills: it names the kind of its items.
type ObjectList interface {
	ItemGroupVersionKind() GroupVersionKind
}

// NamespacedName is the key of an object: Namespace is "" for cluster-scoped kinds.
type NamespacedName struct {
	Namespace string
	Name      string
}

func (n NamespacedName) String() string {
	if n.Namespace == "" {
		return n.Name
	}
	return n.Namespace + "/" + n.Name
}

// KeyOf returns the NamespacedName of obj.
func KeyOf(obj Object) NamespacedName {
	m := obj.GetObjectMeta()
	return NamespacedName{Namespace: m.Namespace, Name: m.Name}
}

// TypeMeta is the apiVersion and kind every object carries. Embed it in your types.
type TypeMeta struct {
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind,omitempty"`
}

// SetGroupVersionKind fills apiVersion and kind.
func (t *TypeMeta) SetGroupVersionKind(gvk GroupVersionKind) {
	t.APIVersion = gvk.APIVersion()
	t.Kind = gvk.Kind
}

// ObjectMeta is metadata every persisted object has. Embed it with the tag `json:"metadata"`.
// managedFields is deliberately absent: an Update without it leaves the server's copy alone, and a
// server-side apply must not carry it. creationTimestamp is a pointer because encoding/json cannot
// leave out a zero struct: as a plain Time, every object this SDK writes would carry
// "creationTimestamp": null.
type ObjectMeta struct {
	Name                       string            `json:"name,omitempty"`
	GenerateName               string            `json:"generateName,omitempty"`
	Namespace                  string            `json:"namespace,omitempty"`
	UID                        string            `json:"uid,omitempty"`
	ResourceVersion            string            `json:"resourceVersion,omitempty"`
	Generation                 int64             `json:"generation,omitempty"`
	CreationTimestamp          *Time             `json:"creationTimestamp,omitempty"`
	DeletionTimestamp          *Time             `json:"deletionTimestamp,omitempty"`
	DeletionGracePeriodSeconds *int64            `json:"deletionGracePeriodSeconds,omitempty"`
	Labels                     map[string]string `json:"labels,omitempty"`
	Annotations                map[string]string `json:"annotations,omitempty"`
	OwnerReferences            []OwnerReference  `json:"ownerReferences,omitempty"`
	Finalizers                 []string          `json:"finalizers,omitempty"`
}

// GetObjectMeta returns the metadata itself, so types that embed ObjectMeta satisfy Object.
func (m *ObjectMeta) GetObjectMeta() *ObjectMeta { return m }

// IsBeingDeleted reports whether deletion has been requested (deletionTimestamp set) and the
// object only waits for its finalizers.
func (m *ObjectMeta) IsBeingDeleted() bool { return m.DeletionTimestamp != nil }

// SetLabel sets one label, creating the map when needed.
func (m *ObjectMeta) SetLabel(key, value string) {
	if m.Labels == nil {
		m.Labels = map[string]string{}
	}
	m.Labels[key] = value
}

// SetAnnotation sets one annotation, creating the map when needed.
func (m *ObjectMeta) SetAnnotation(key, value string) {
	if m.Annotations == nil {
		m.Annotations = map[string]string{}
	}
	m.Annotations[key] = value
}

// ListMeta is the metadata of a list response.
type ListMeta struct {
	ResourceVersion string `json:"resourceVersion,omitempty"`
	Continue        string `json:"continue,omitempty"`
}

// OwnerReference points from a dependent to its owner; the garbage collector deletes dependents
// whose owners are gone.
type OwnerReference struct {
	APIVersion         string `json:"apiVersion"`
	Kind               string `json:"kind"`
	Name               string `json:"name"`
	UID                string `json:"uid"`
	Controller         *bool  `json:"controller,omitempty"`
	BlockOwnerDeletion *bool  `json:"blockOwnerDeletion,omitempty"`
}

// IsController reports whether this is the managing controller's reference.
func (r OwnerReference) IsController() bool { return r.Controller != nil && *r.Controller }

// ObjectReference identifies an object, e.g. the one an Event is about.
type ObjectReference struct {
	APIVersion      string `json:"apiVersion,omitempty"`
	Kind            string `json:"kind,omitempty"`
	Namespace       string `json:"namespace,omitempty"`
	Name            string `json:"name,omitempty"`
	UID             string `json:"uid,omitempty"`
	ResourceVersion string `json:"resourceVersion,omitempty"`
	FieldPath       string `json:"fieldPath,omitempty"`
}

// ReferenceTo returns an ObjectReference to obj.
func ReferenceTo(obj Object) ObjectReference {
	m := obj.GetObjectMeta()
	gvk := obj.GroupVersionKind()
	return ObjectReference{
		APIVersion: gvk.APIVersion(), Kind: gvk.Kind, Namespace: m.Namespace, Name: m.Name,
		UID: m.UID, ResourceVersion: m.ResourceVersion,
	}
}

// ConditionStatus is "True", "False" or "Unknown".
type ConditionStatus string

// The condition statuses.
const (
	ConditionTrue    ConditionStatus = "True"
	ConditionFalse   ConditionStatus = "False"
	ConditionUnknown ConditionStatus = "Unknown"
)

// Condition is a meta/v1 Condition, the usual shape of status.conditions entries. Helpers that
// keep lastTransitionTime right are in package controllerutil.
type Condition struct {
	Type               string          `json:"type"`
	Status             ConditionStatus `json:"status"`
	ObservedGeneration int64           `json:"observedGeneration,omitempty"`
	LastTransitionTime Time            `json:"lastTransitionTime"`
	Reason             string          `json:"reason"`
	Message            string          `json:"message"`
}

// LabelSelector selects objects by labels, as in a Deployment's spec.selector.
type LabelSelector struct {
	MatchLabels      map[string]string          `json:"matchLabels,omitempty"`
	MatchExpressions []LabelSelectorRequirement `json:"matchExpressions,omitempty"`
}

// LabelSelectorRequirement is one expression of a LabelSelector.
type LabelSelectorRequirement struct {
	Key      string   `json:"key"`
	Operator string   `json:"operator"` // In, NotIn, Exists, DoesNotExist
	Values   []string `json:"values,omitempty"`
}

// String renders the selector in the syntax of a list request's labelSelector.
func (s LabelSelector) String() string {
	var parts []string
	keys := make([]string, 0, len(s.MatchLabels))
	for k := range s.MatchLabels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		parts = append(parts, k+"="+s.MatchLabels[k])
	}
	for _, e := range s.MatchExpressions {
		switch e.Operator {
		case "In":
			parts = append(parts, e.Key+" in ("+strings.Join(e.Values, ",")+")")
		case "NotIn":
			parts = append(parts, e.Key+" notin ("+strings.Join(e.Values, ",")+")")
		case "Exists":
			parts = append(parts, e.Key)
		case "DoesNotExist":
			parts = append(parts, "!"+e.Key)
		}
	}
	return strings.Join(parts, ",")
}

// SelectorFromLabels renders {"a":"x","b":"y"} as "a=x,b=y" (keys sorted, so the output is stable).
func SelectorFromLabels(labels map[string]string) string {
	return LabelSelector{MatchLabels: labels}.String()
}
