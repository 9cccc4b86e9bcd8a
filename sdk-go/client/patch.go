// Patches: server-side apply, a merge patch computed from a snapshot (MergeFrom), and raw patches.

package client

import (
	"bytes"
	"encoding/json"
	"fmt"

	"wasm-operator.dev/sdk-go/abi"
)

// PatchType is how the API server interprets a patch body.
type PatchType = string

// The patch types.
const (
	MergePatchType          PatchType = abi.PatchMerge
	JSONPatchType           PatchType = abi.PatchJSON
	StrategicMergePatchType PatchType = abi.PatchStrategic
	ApplyPatchType          PatchType = abi.PatchApply
)

// Patch produces the body of a patch request for an object.
type Patch interface {
	Type() PatchType
	Data(obj Object) ([]byte, error)
}

// Apply is a server-side apply of the object as it stands: send only the fields you want to own.
// Combine it with ForceOwnership and, if needed, FieldOwner:
//
//	err := c.Patch(ctx, deployment, client.Apply, client.ForceOwnership)
var Apply Patch = applyPatch{}

type applyPatch struct{}

func (applyPatch) Type() PatchType { return ApplyPatchType }

func (applyPatch) Data(obj Object) ([]byte, error) { return json.Marshal(obj) }

// MergeFrom snapshots obj now; the patch it returns sends what changed in obj since then, as a
// JSON merge patch. The usual pattern:
//
//	patch := client.MergeFrom(obj)
//	obj.Labels["tier"] = "web"
//	err := c.Patch(ctx, obj, patch)
//
// Because only fields that changed are sent, this is the safe way to modify an object with a
// typed struct that models only part of its kind.
func MergeFrom(obj Object) Patch { return snapshot(obj, false) }

// MergeFromWithOptimisticLock is MergeFrom plus the snapshot's resourceVersion, so the patch fails
// with a conflict if someone changed the object in between.
func MergeFromWithOptimisticLock(obj Object) Patch { return snapshot(obj, true) }

func snapshot(obj Object, lock bool) Patch {
	original, err := json.Marshal(obj)
	return &mergeFromPatch{original: original, snapshotErr: err, lock: lock,
		resourceVersion: obj.GetObjectMeta().ResourceVersion}
}

type mergeFromPatch struct {
	original        []byte
	snapshotErr     error
	lock            bool
	resourceVersion string
}

func (p *mergeFromPatch) Type() PatchType { return MergePatchType }

func (p *mergeFromPatch) Data(obj Object) ([]byte, error) {
	if p.snapshotErr != nil {
		return nil, p.snapshotErr
	}
	modified, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	before, err := decodeJSON(p.original)
	if err != nil {
		return nil, err
	}
	after, err := decodeJSON(modified)
	if err != nil {
		return nil, err
	}
	beforeMap, ok1 := before.(map[string]any)
	afterMap, ok2 := after.(map[string]any)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("MergeFrom needs objects that encode as JSON objects")
	}
	diff := mergeDiff(beforeMap, afterMap)
	// apiVersion and kind are filled in by the client before the patch is computed; they are not a
	// change to send.
	delete(diff, "apiVersion")
	delete(diff, "kind")
	if p.lock {
		meta, _ := diff["metadata"].(map[string]any)
		if meta == nil {
			meta = map[string]any{}
			diff["metadata"] = meta
		}
		meta["resourceVersion"] = p.resourceVersion
	}
	return json.Marshal(diff)
}

// mergeDiff returns the JSON merge patch (RFC 7386) that turns before into after: removed keys
// become null, changed objects recurse, anything else that changed is sent whole.
func mergeDiff(before, after map[string]any) map[string]any {
	diff := map[string]any{}
	for key := range before {
		if _, kept := after[key]; !kept {
			diff[key] = nil
		}
	}
	for key, value := range after {
		old, existed := before[key]
		if !existed {
			diff[key] = value
			continue
		}
		oldMap, oldIsMap := old.(map[string]any)
		newMap, newIsMap := value.(map[string]any)
		if oldIsMap && newIsMap {
			if nested := mergeDiff(oldMap, newMap); len(nested) > 0 {
				diff[key] = nested
			}
			continue
		}
		if !jsonEqual(old, value) {
			diff[key] = value
		}
	}
	return diff
}

// jsonEqual compares two values decoded from JSON (with json.Number numbers).
func jsonEqual(a, b any) bool {
	switch av := a.(type) {
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok || len(av) != len(bv) {
			return false
		}
		for k, v := range av {
			w, ok := bv[k]
			if !ok || !jsonEqual(v, w) {
				return false
			}
		}
		return true
	case []any:
		bv, ok := b.([]any)
		if !ok || len(av) != len(bv) {
			return false
		}
		for i := range av {
			if !jsonEqual(av[i], bv[i]) {
				return false
			}
		}
		return true
	default:
		return a == b
	}
}

func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

// RawPatch sends data as is, with the given patch type, e.g. a JSON patch:
//
//	client.RawPatch(client.JSONPatchType, []byte(`[{"op":"remove","path":"/spec/paused"}]`))
func RawPatch(patchType PatchType, data []byte) Patch {
	return rawPatch{patchType: patchType, data: data}
}

type rawPatch struct {
	patchType PatchType
	data      []byte
}

func (p rawPatch) Type() PatchType { return p.patchType }

func (p rawPatch) Data(Object) ([]byte, error) { return p.data, nil }
