// The JSON messages of ABI v1, field for field. Writers omit optional fields that are unset (the
// spec's rule, and what the Rust SDK does, so transcripts of both match); where a message sends
// only the fields of one request kind, the types here marshal by hand.

package abi

import (
	"encoding/json"
	"fmt"
)

// Version is the ABI version this SDK speaks; it is carried by the name of the marker export.
const Version = 1

// Names of the exports the guest provides and of the imports the host provides.
const (
	ExportVersionMarker = "wasm_operator_abi_v1"
	ExportInit          = "wasm_operator_init"
	ExportReconcile     = "wasm_operator_reconcile"

	ImportModule       = "wasm_operator"
	ImportInputRead    = "input_read"
	ImportResultWrite  = "result_write"
	ImportResponseRead = "response_read"
	ImportKubeRequest  = "kube_request"
	ImportHTTPRequest  = "http_request"
	ImportLog          = "log"
)

// Return codes of the init and reconcile exports.
const (
	ReturnOK    uint32 = 0 // the result holds a Registration or a ReconcileResult
	ReturnError uint32 = 1 // the result holds a GuestError
)

// InitInput is the input of wasm_operator_init.
type InitInput struct {
	ABIVersion   int             `json:"abiVersion"`
	OperatorName string          `json:"operatorName"`
	Config       json.RawMessage `json:"config"`
}

// Registration is the result of wasm_operator_init: what the operator watches.
type Registration struct {
	For     WatchSpec   `json:"for"`
	Owns    []WatchSpec `json:"owns"`
	Watches []Watch     `json:"watches"`
}

// MarshalJSON writes owns and watches as [] rather than null when empty.
func (r Registration) MarshalJSON() ([]byte, error) {
	type plain Registration
	p := plain(r)
	if p.Owns == nil {
		p.Owns = []WatchSpec{}
	}
	if p.Watches == nil {
		p.Watches = []Watch{}
	}
	return json.Marshal(p)
}

// Predicate filters update events of a watch; creates and deletes always pass.
type Predicate string

// The predicates of ABI v1.
const (
	GenerationChanged  Predicate = "generationChanged"
	LabelsChanged      Predicate = "labelsChanged"
	AnnotationsChanged Predicate = "annotationsChanged"
)

// WatchSpec names a kind to watch, optionally narrowed to one namespace and a label selector.
type WatchSpec struct {
	APIVersion    string      `json:"apiVersion"`
	Kind          string      `json:"kind"`
	Namespace     *string     `json:"namespace,omitempty"`     // nil: all namespaces
	LabelSelector *string     `json:"labelSelector,omitempty"` // Kubernetes selector syntax; nil: everything
	Predicates    []Predicate `json:"predicates"`
}

// MarshalJSON writes predicates as [] rather than null when empty.
func (w WatchSpec) MarshalJSON() ([]byte, error) {
	type plain WatchSpec
	p := plain(w)
	if p.Predicates == nil {
		p.Predicates = []Predicate{}
	}
	return json.Marshal(p)
}

// Watch is an entry of Registration.Watches: a WatchSpec plus how its events map to requests for
// the primary ("for") kind.
type Watch struct {
	WatchSpec
	Mapping Mapping `json:"mapping"`
}

// MarshalJSON flattens the WatchSpec and appends the mapping. (Embedding alone would lose the
// WatchSpec fields, because WatchSpec's own MarshalJSON would be promoted to Watch.)
func (w Watch) MarshalJSON() ([]byte, error) {
	spec, err := json.Marshal(w.WatchSpec)
	if err != nil {
		return nil, err
	}
	mapping, err := json.Marshal(w.Mapping)
	if err != nil {
		return nil, err
	}
	out := append(spec[:len(spec)-1], `,"mapping":`...)
	out = append(out, mapping...)
	return append(out, '}'), nil
}

// UnmarshalJSON reads the flattened form written by MarshalJSON.
func (w *Watch) UnmarshalJSON(data []byte) error {
	if err := json.Unmarshal(data, &w.WatchSpec); err != nil {
		return err
	}
	var m struct {
		Mapping Mapping `json:"mapping"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return err
	}
	w.Mapping = m.Mapping
	return nil
}

// MappingType tags a Mapping.
type MappingType string

// The mappings of ABI v1.
const (
	MappingOwner  MappingType = "owner"  // enqueue every ownerReference whose kind matches "for"
	MappingLabels MappingType = "labels" // enqueue the "for" object named by a label
	MappingAll    MappingType = "all"    // enqueue every cached "for" object
)

// Mapping says which primary objects an event on a watched object enqueues.
type Mapping struct {
	Type           MappingType
	NameLabel      string  // labels only: the label holding the primary object's name
	NamespaceLabel *string // labels only: the label holding its namespace; nil = the event object's
}

// MarshalJSON writes only the fields of the mapping's type.
func (m Mapping) MarshalJSON() ([]byte, error) {
	if m.Type == MappingLabels {
		return json.Marshal(struct {
			Type           MappingType `json:"type"`
			NameLabel      string      `json:"nameLabel"`
			NamespaceLabel *string     `json:"namespaceLabel,omitempty"`
		}{m.Type, m.NameLabel, m.NamespaceLabel})
	}
	return json.Marshal(struct {
		Type MappingType `json:"type"`
	}{m.Type})
}

// UnmarshalJSON reads any mapping type.
func (m *Mapping) UnmarshalJSON(data []byte) error {
	var wire struct {
		Type           MappingType `json:"type"`
		NameLabel      string      `json:"nameLabel"`
		NamespaceLabel *string     `json:"namespaceLabel"`
	}
	if err := json.Unmarshal(data, &wire); err != nil {
		return err
	}
	*m = Mapping{Type: wire.Type, NameLabel: wire.NameLabel, NamespaceLabel: wire.NamespaceLabel}
	return nil
}

// ReconcileRequest is the input of wasm_operator_reconcile.
type ReconcileRequest struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Namespace  string          `json:"namespace,omitempty"` // "" (absent or null on the wire) for cluster-scoped kinds
	Name       string          `json:"name"`
	Object     json.RawMessage `json:"object"` // the cached object; null when deleted or not cached
	Attempt    uint32          `json:"attempt"`
	// AbsentReason says why Object is absent, and is set only then: AbsentDeleted,
	// AbsentNotSelected or AbsentUnknown. Guests treat any other value, and its absence (a host
	// that predates the field), as AbsentUnknown.
	AbsentReason string `json:"absentReason,omitempty"`
}

// Values of ReconcileRequest.AbsentReason.
const (
	// AbsentDeleted: the object no longer exists.
	AbsentDeleted = "deleted"
	// AbsentNotSelected: the object exists but no longer matches the label selector of the "for"
	// watch, so the host stopped caching it.
	AbsentNotSelected = "notSelected"
	// AbsentUnknown: the host could not tell why it has no object.
	AbsentUnknown = "unknown"
)

// ReconcileResult is the result of a successful reconcile.
type ReconcileResult struct {
	RequeueAfterMs *uint64 `json:"requeueAfterMs,omitempty"`
	Requeue        bool    `json:"requeue,omitempty"`
}

// GuestError is the result of an export that returns ReturnError.
type GuestError struct {
	Message        string  `json:"message"`
	RequeueAfterMs *uint64 `json:"requeueAfterMs,omitempty"`
}

// Kubernetes request verbs.
const (
	VerbGet    = "get"
	VerbList   = "list"
	VerbCreate = "create"
	VerbUpdate = "update"
	VerbPatch  = "patch"
	VerbDelete = "delete"
)

// Patch types of a patch KubeRequest.
const (
	PatchMerge     = "merge"     // application/merge-patch+json
	PatchJSON      = "json"      // application/json-patch+json
	PatchStrategic = "strategic" // application/strategic-merge-patch+json
	PatchApply     = "apply"     // server-side apply
)

// KubeRequest is the argument of the kube_request import. Only the fields of its Verb are sent, and
// of those the optional ones only when set: an empty string and a false flag are left out.
type KubeRequest struct {
	Verb              string
	APIVersion        string
	Kind              string
	Namespace         string
	Name              string
	LabelSelector     string
	FieldSelector     string
	Subresource       string
	PatchType         string
	FieldManager      string
	Force             bool
	PropagationPolicy string
	Cached            bool
	Body              json.RawMessage
}

// MarshalJSON writes exactly the fields the ABI defines for the request's verb.
func (r KubeRequest) MarshalJSON() ([]byte, error) {
	switch r.Verb {
	case VerbGet:
		return json.Marshal(struct {
			Verb       string  `json:"verb"`
			APIVersion string  `json:"apiVersion"`
			Kind       string  `json:"kind"`
			Namespace  *string `json:"namespace,omitempty"`
			Name       string  `json:"name"`
			Cached     bool    `json:"cached,omitempty"`
		}{r.Verb, r.APIVersion, r.Kind, optional(r.Namespace), r.Name, r.Cached})
	case VerbList:
		return json.Marshal(struct {
			Verb          string  `json:"verb"`
			APIVersion    string  `json:"apiVersion"`
			Kind          string  `json:"kind"`
			Namespace     *string `json:"namespace,omitempty"`
			LabelSelector *string `json:"labelSelector,omitempty"`
			FieldSelector *string `json:"fieldSelector,omitempty"`
			Cached        bool    `json:"cached,omitempty"`
		}{r.Verb, r.APIVersion, r.Kind, optional(r.Namespace), optional(r.LabelSelector), optional(r.FieldSelector), r.Cached})
	case VerbCreate:
		return json.Marshal(struct {
			Verb       string          `json:"verb"`
			APIVersion string          `json:"apiVersion"`
			Kind       string          `json:"kind"`
			Namespace  *string         `json:"namespace,omitempty"`
			Body       json.RawMessage `json:"body"`
		}{r.Verb, r.APIVersion, r.Kind, optional(r.Namespace), bodyOrNull(r.Body)})
	case VerbUpdate:
		return json.Marshal(struct {
			Verb        string          `json:"verb"`
			APIVersion  string          `json:"apiVersion"`
			Kind        string          `json:"kind"`
			Namespace   *string         `json:"namespace,omitempty"`
			Name        string          `json:"name"`
			Subresource *string         `json:"subresource,omitempty"`
			Body        json.RawMessage `json:"body"`
		}{r.Verb, r.APIVersion, r.Kind, optional(r.Namespace), r.Name, optional(r.Subresource), bodyOrNull(r.Body)})
	case VerbPatch:
		return json.Marshal(struct {
			Verb         string          `json:"verb"`
			APIVersion   string          `json:"apiVersion"`
			Kind         string          `json:"kind"`
			Namespace    *string         `json:"namespace,omitempty"`
			Name         string          `json:"name"`
			Subresource  *string         `json:"subresource,omitempty"`
			PatchType    string          `json:"patchType"`
			FieldManager *string         `json:"fieldManager,omitempty"`
			Force        bool            `json:"force,omitempty"`
			Body         json.RawMessage `json:"body"`
		}{r.Verb, r.APIVersion, r.Kind, optional(r.Namespace), r.Name, optional(r.Subresource), r.PatchType,
			optional(r.FieldManager), r.Force, bodyOrNull(r.Body)})
	case VerbDelete:
		return json.Marshal(struct {
			Verb              string  `json:"verb"`
			APIVersion        string  `json:"apiVersion"`
			Kind              string  `json:"kind"`
			Namespace         *string `json:"namespace,omitempty"`
			Name              string  `json:"name"`
			PropagationPolicy *string `json:"propagationPolicy,omitempty"`
		}{r.Verb, r.APIVersion, r.Kind, optional(r.Namespace), r.Name, optional(r.PropagationPolicy)})
	}
	return nil, fmt.Errorf("abi: unknown kube request verb %q", r.Verb)
}

// UnmarshalJSON reads a request of any verb (used by fake hosts).
func (r *KubeRequest) UnmarshalJSON(data []byte) error {
	var wire struct {
		Verb              string          `json:"verb"`
		APIVersion        string          `json:"apiVersion"`
		Kind              string          `json:"kind"`
		Namespace         *string         `json:"namespace"`
		Name              string          `json:"name"`
		LabelSelector     *string         `json:"labelSelector"`
		FieldSelector     *string         `json:"fieldSelector"`
		Subresource       *string         `json:"subresource"`
		PatchType         string          `json:"patchType"`
		FieldManager      *string         `json:"fieldManager"`
		Force             bool            `json:"force"`
		PropagationPolicy *string         `json:"propagationPolicy"`
		Cached            bool            `json:"cached"`
		Body              json.RawMessage `json:"body"`
	}
	if err := json.Unmarshal(data, &wire); err != nil {
		return err
	}
	*r = KubeRequest{
		Verb: wire.Verb, APIVersion: wire.APIVersion, Kind: wire.Kind, Namespace: deref(wire.Namespace),
		Name: wire.Name, LabelSelector: deref(wire.LabelSelector), FieldSelector: deref(wire.FieldSelector),
		Subresource: deref(wire.Subresource), PatchType: wire.PatchType, FieldManager: deref(wire.FieldManager),
		Force: wire.Force, PropagationPolicy: deref(wire.PropagationPolicy), Cached: wire.Cached, Body: wire.Body,
	}
	return nil
}

// HTTPRequest is the argument of the http_request import.
type HTTPRequest struct {
	Method    string            `json:"method"`
	URL       string            `json:"url"`
	Headers   map[string]string `json:"headers,omitempty"`
	Body      *string           `json:"body,omitempty"`
	TimeoutMs *uint64           `json:"timeoutMs,omitempty"`
}

// HTTPResponse is the value inside a successful HostResponse to http_request. A non-2xx status is
// still a success at this level.
type HTTPResponse struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

// Log levels of a LogRecord.
const (
	LevelError = "error"
	LevelWarn  = "warn"
	LevelInfo  = "info"
	LevelDebug = "debug"
	LevelTrace = "trace"
)

// LogRecord is the argument of the log import. Field values may be any JSON value; package log
// sends strings, numbers, bools, null and JSON text (json.RawMessage) for structured values.
type LogRecord struct {
	Level   string         `json:"level"`
	Message string         `json:"message"`
	Fields  map[string]any `json:"fields,omitempty"`
}

// HostResponse is what response_read yields after kube_request or http_request: exactly one of Ok
// and Error is set.
type HostResponse struct {
	Ok    json.RawMessage `json:"ok,omitempty"`
	Error *HostError      `json:"error,omitempty"`
}

// Types of HostError.
const (
	ErrorAPIStatus        = "apiStatus"
	ErrorCapabilityDenied = "capabilityDenied"
	ErrorLimitExceeded    = "limitExceeded"
	ErrorTimeout          = "timeout"
	ErrorTransport        = "transport"
	ErrorInvalidRequest   = "invalidRequest"
)

// HostError is a failed host call as it travels on the wire. Package hosterr turns it into Go errors.
type HostError struct {
	Type    string  `json:"type"`
	Message string  `json:"message"`
	Status  *Status `json:"status,omitempty"` // apiStatus only
	Limit   string  `json:"limit,omitempty"`  // limitExceeded only
}

// Status is a Kubernetes meta/v1 Status, as the API server sends it with a failed request.
type Status struct {
	Kind       string         `json:"kind,omitempty"`
	APIVersion string         `json:"apiVersion,omitempty"`
	Status     string         `json:"status,omitempty"`
	Message    string         `json:"message,omitempty"`
	Reason     string         `json:"reason,omitempty"`
	Details    *StatusDetails `json:"details,omitempty"`
	Code       int32          `json:"code,omitempty"`
}

// StatusDetails carries what the API server knows about the object a Status is about.
type StatusDetails struct {
	Name              string        `json:"name,omitempty"`
	Group             string        `json:"group,omitempty"`
	Kind              string        `json:"kind,omitempty"`
	UID               string        `json:"uid,omitempty"`
	Causes            []StatusCause `json:"causes,omitempty"`
	RetryAfterSeconds int32         `json:"retryAfterSeconds,omitempty"`
}

// StatusCause is one reason a request failed, e.g. one invalid field.
type StatusCause struct {
	Type    string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	Field   string `json:"field,omitempty"`
}

// optional maps "" to nil, so an unset field is left out of the message.
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// bodyOrNull keeps a missing body valid JSON.
func bodyOrNull(b json.RawMessage) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("null")
	}
	return b
}
