// Whole-object writes: the finalizer updates send the WebApp back exactly as the API server sent
// it, with only metadata.finalizers changed.

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"wasm-operator.dev/sdk-go/client"
	"wasm-operator.dev/sdk-go/types"
)

// wholeObject holds every field of an object as the API server sent it. A typed struct would not
// do for an update: it drops the fields it does not model (managedFields, for one) and cannot send
// an emptied finalizer list as [] rather than leaving it out.
type wholeObject struct {
	gvk    types.GroupVersionKind
	meta   types.ObjectMeta // the name and namespace the request is addressed to
	fields map[string]any
}

func (o *wholeObject) GetObjectMeta() *types.ObjectMeta { return &o.meta }

func (o *wholeObject) GroupVersionKind() types.GroupVersionKind { return o.gvk }

func (o *wholeObject) SetGroupVersionKind(gvk types.GroupVersionKind) {
	o.gvk = gvk
	if o.fields == nil {
		o.fields = map[string]any{}
	}
	o.fields["apiVersion"], o.fields["kind"] = gvk.APIVersion(), gvk.Kind
}

func (o *wholeObject) MarshalJSON() ([]byte, error) { return json.Marshal(o.fields) }

func (o *wholeObject) UnmarshalJSON(data []byte) error {
	decoder := json.NewDecoder(bytes.NewReader(data))
	decoder.UseNumber() // integers such as metadata.generation survive exactly
	var fields map[string]any
	if err := decoder.Decode(&fields); err != nil {
		return err
	}
	var header struct {
		APIVersion string           `json:"apiVersion"`
		Kind       string           `json:"kind"`
		Metadata   types.ObjectMeta `json:"metadata"`
	}
	if err := json.Unmarshal(data, &header); err != nil {
		return err
	}
	*o = wholeObject{gvk: types.GVK(header.APIVersion, header.Kind), meta: header.Metadata, fields: fields}
	return nil
}

// updateFinalizers sends object (JSON as the API server sent it) back with its finalizer list
// replaced by edit(list), and returns what the API server answered.
func updateFinalizers(ctx context.Context, c client.Client, object json.RawMessage, edit func([]string) []string) (json.RawMessage, error) {
	var whole wholeObject
	if err := json.Unmarshal(object, &whole); err != nil {
		return nil, fmt.Errorf("reading the object: %w", err)
	}
	metadata, ok := whole.fields["metadata"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("the object has no metadata")
	}
	metadata["finalizers"] = edit(whole.meta.Finalizers)
	if err := c.Update(ctx, &whole); err != nil {
		return nil, err
	}
	return json.Marshal(&whole)
}

// withFinalizer appends finalizer to list.
func withFinalizer(finalizer string) func([]string) []string {
	return func(list []string) []string { return append(list, finalizer) }
}

// withoutFinalizer drops every occurrence of finalizer and keeps the others in order. The result
// is never nil, so an emptied list is sent as [].
func withoutFinalizer(finalizer string) func([]string) []string {
	return func(list []string) []string {
		kept := []string{}
		for _, f := range list {
			if f != finalizer {
				kept = append(kept, f)
			}
		}
		return kept
	}
}
