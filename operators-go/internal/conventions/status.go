// Status writes: a merge patch of the status subresource, sent only when something other than a
// lastTransitionTime would change.

package conventions

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"wasm-operator.dev/sdk-go/client"
	"wasm-operator.dev/sdk-go/types"
)

// WriteStatus merge-patches the status subresource of obj (named by its namespace and name) with
// {"status": desired}, unless desired equals current, the object's status as the API server sent
// it.
func WriteStatus(ctx context.Context, c client.Client, obj types.Object, current json.RawMessage, desired any) error {
	differs, err := StatusDiffers(current, desired)
	if err != nil || !differs {
		return err
	}
	body, err := json.Marshal(map[string]any{"status": desired})
	if err != nil {
		return err
	}
	return c.Status().Patch(ctx, obj, client.RawPatch(client.MergePatchType, body))
}

// StatusDiffers compares a status as JSON values, ignoring every condition's lastTransitionTime
// (a timestamp alone is no reason to write) and treating a null field as an absent one (which is
// what a merge patch makes of it).
func StatusDiffers(current json.RawMessage, desired any) (bool, error) {
	encoded, err := json.Marshal(desired)
	if err != nil {
		return false, fmt.Errorf("encoding status: %w", err)
	}
	want, err := normalizedStatus(encoded)
	if err != nil {
		return false, err
	}
	have, err := normalizedStatus(current)
	if err != nil {
		return false, fmt.Errorf("reading current status: %w", err)
	}
	return !sameJSON(have, want), nil
}

// sameJSON compares values decoded from JSON (maps, slices, json.Number, strings, bools, nil). It
// is written out rather than reflect.DeepEqual so it leans on nothing TinyGo's reflect lacks.
func sameJSON(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for key, value := range x {
			other, present := y[key]
			if !present || !sameJSON(value, other) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameJSON(x[i], y[i]) {
				return false
			}
		}
		return true
	default:
		return a == b
	}
}

// normalizedStatus decodes a status into plain maps, without nulls and lastTransitionTimes. An absent
// status is an empty one.
func normalizedStatus(status json.RawMessage) (map[string]any, error) {
	fields := map[string]any{}
	if len(bytes.TrimSpace(status)) == 0 || string(status) == "null" {
		return fields, nil
	}
	decoder := json.NewDecoder(bytes.NewReader(status))
	decoder.UseNumber() // 3 and 3.0 would otherwise be the same; the API server keeps what was sent
	if err := decoder.Decode(&fields); err != nil {
		return nil, err
	}
	for key, value := range fields {
		if value == nil {
			delete(fields, key)
		}
	}
	if conditions, ok := fields["conditions"].([]any); ok {
		for _, c := range conditions {
			if condition, ok := c.(map[string]any); ok {
				delete(condition, "lastTransitionTime")
			}
		}
	}
	return fields, nil
}

// CurrentStatus returns the "status" field of an object as the API server sent it (nil when absent).
func CurrentStatus(object json.RawMessage) (json.RawMessage, error) {
	var o struct {
		Status json.RawMessage `json:"status"`
	}
	if err := json.Unmarshal(object, &o); err != nil {
		return nil, err
	}
	return o.Status, nil
}
