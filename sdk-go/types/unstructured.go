// Unstructured and UnstructuredList: objects of any kind, with typed metadata and every other
// top-level field (spec, status, data, ...) kept as decoded JSON in a map.

package types

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Unstructured is an object of any kind. apiVersion, kind and metadata are typed (so it satisfies
// Object like the typed structs do); everything else is in Content, decoded with json.Number for
// numbers so integers survive the round trip exactly.
type Unstructured struct {
	TypeMeta
	ObjectMeta
	Content map[string]any
}

// NewUnstructured returns an empty object of the given apiVersion and kind, ready for client.Get or
// for filling in and creating.
func NewUnstructured(apiVersion, kind string) *Unstructured {
	return &Unstructured{TypeMeta: TypeMeta{APIVersion: apiVersion, Kind: kind}}
}

// GroupVersionKind returns the kind recorded in the object.
func (u *Unstructured) GroupVersionKind() GroupVersionKind { return GVK(u.APIVersion, u.Kind) }

// MarshalJSON writes apiVersion, kind, metadata and the content as one object.
func (u Unstructured) MarshalJSON() ([]byte, error) {
	out := make(map[string]any, len(u.Content)+3)
	for k, v := range u.Content {
		out[k] = v
	}
	if u.APIVersion != "" {
		out["apiVersion"] = u.APIVersion
	}
	if u.Kind != "" {
		out["kind"] = u.Kind
	}
	out["metadata"] = u.ObjectMeta
	return json.Marshal(out)
}

// UnmarshalJSON splits an object into its typed header and its content.
func (u *Unstructured) UnmarshalJSON(data []byte) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return err
	}
	*u = Unstructured{Content: map[string]any{}}
	for key, raw := range fields {
		var err error
		switch key {
		case "apiVersion":
			err = json.Unmarshal(raw, &u.APIVersion)
		case "kind":
			err = json.Unmarshal(raw, &u.Kind)
		case "metadata":
			err = json.Unmarshal(raw, &u.ObjectMeta)
		default:
			u.Content[key], err = decodeValue(raw)
		}
		if err != nil {
			return fmt.Errorf("field %s: %w", key, err)
		}
	}
	return nil
}

func decodeValue(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

// DecodeInto converts the object into a typed struct (or any JSON-decodable value).
func (u *Unstructured) DecodeInto(into any) error {
	data, err := json.Marshal(u)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, into)
}

// ToUnstructured converts any JSON-encodable object (a typed struct, for instance) to Unstructured.
func ToUnstructured(obj any) (*Unstructured, error) {
	data, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	u := &Unstructured{}
	return u, json.Unmarshal(data, u)
}

// Nested returns the value at path inside Content, e.g. Nested("spec", "replicas").
func (u *Unstructured) Nested(path ...string) (any, bool) {
	if len(path) == 0 {
		return nil, false
	}
	var current any = u.Content
	for _, key := range path {
		m, ok := current.(map[string]any)
		if !ok {
			return nil, false
		}
		if current, ok = m[key]; !ok {
			return nil, false
		}
	}
	return current, true
}

// NestedString returns the string at path; ok is false when it is missing or not a string.
func (u *Unstructured) NestedString(path ...string) (value string, ok bool) {
	v, found := u.Nested(path...)
	value, ok = v.(string)
	return value, found && ok
}

// NestedBool returns the boolean at path.
func (u *Unstructured) NestedBool(path ...string) (value bool, ok bool) {
	v, found := u.Nested(path...)
	value, ok = v.(bool)
	return value, found && ok
}

// NestedInt64 returns the integer at path; a number with a fraction is not an integer.
func (u *Unstructured) NestedInt64(path ...string) (int64, bool) {
	v, found := u.Nested(path...)
	if !found {
		return 0, false
	}
	switch n := v.(type) {
	case json.Number:
		i, err := strconv.ParseInt(string(n), 10, 64)
		return i, err == nil
	case int64:
		return n, true
	case int:
		return int64(n), true
	case int32:
		return int64(n), true
	case float64:
		if n == float64(int64(n)) {
			return int64(n), true
		}
	}
	return 0, false
}

// NestedMap returns the object at path.
func (u *Unstructured) NestedMap(path ...string) (map[string]any, bool) {
	v, found := u.Nested(path...)
	m, ok := v.(map[string]any)
	return m, found && ok
}

// NestedSlice returns the array at path.
func (u *Unstructured) NestedSlice(path ...string) ([]any, bool) {
	v, found := u.Nested(path...)
	s, ok := v.([]any)
	return s, found && ok
}

// SetNested sets the value at path inside Content, creating intermediate objects. It fails when a
// value on the way is not an object. The first key may not be apiVersion, kind or metadata: those
// live in the typed fields.
func (u *Unstructured) SetNested(value any, path ...string) error {
	if len(path) == 0 {
		return fmt.Errorf("SetNested: empty path")
	}
	switch path[0] {
	case "apiVersion", "kind", "metadata":
		return fmt.Errorf("SetNested: %s is a typed field of Unstructured; set it directly", path[0])
	}
	if u.Content == nil {
		u.Content = map[string]any{}
	}
	m := u.Content
	for i, key := range path[:len(path)-1] {
		next, exists := m[key]
		if !exists || next == nil {
			child := map[string]any{}
			m[key] = child
			m = child
			continue
		}
		child, ok := next.(map[string]any)
		if !ok {
			return fmt.Errorf("SetNested: %s is a %T, not an object", strings.Join(path[:i+1], "."), next)
		}
		m = child
	}
	m[path[len(path)-1]] = value
	return nil
}

// RemoveNested deletes the value at path, if present.
func (u *Unstructured) RemoveNested(path ...string) {
	if len(path) == 0 {
		return
	}
	parent, ok := u.Nested(path[:len(path)-1]...)
	if len(path) == 1 {
		parent, ok = u.Content, true
	}
	if m, isMap := parent.(map[string]any); ok && isMap {
		delete(m, path[len(path)-1])
	}
}

// UnstructuredList is a list of objects of any kind.
type UnstructuredList struct {
	TypeMeta
	Metadata ListMeta       `json:"metadata"`
	Items    []Unstructured `json:"items"`
}

// NewUnstructuredList returns an empty list for objects of the given apiVersion and item kind.
func NewUnstructuredList(apiVersion, itemKind string) *UnstructuredList {
	return &UnstructuredList{TypeMeta: TypeMeta{APIVersion: apiVersion, Kind: itemKind + "List"}}
}

// UnmarshalJSON decodes a list and gives every item the list's apiVersion and item kind: the API
// server leaves them out of list items, and an Unstructured without them cannot be written back.
func (l *UnstructuredList) UnmarshalJSON(data []byte) error {
	type plain UnstructuredList
	var decoded plain
	if err := json.Unmarshal(data, &decoded); err != nil {
		return err
	}
	*l = UnstructuredList(decoded)
	itemKind := l.ItemGroupVersionKind()
	for i := range l.Items {
		if l.Items[i].APIVersion == "" && l.Items[i].Kind == "" {
			l.Items[i].SetGroupVersionKind(itemKind)
		}
	}
	return nil
}

// ItemGroupVersionKind derives the item kind from the list kind ("ConfigMapList" -> "ConfigMap").
func (l *UnstructuredList) ItemGroupVersionKind() GroupVersionKind {
	return GVK(l.APIVersion, strings.TrimSuffix(l.Kind, "List"))
}
