// Package client reads and writes Kubernetes objects through the host, with the verbs and idioms
// of controller-runtime's client: Get, List, Create, Update, Patch (merge, JSON, strategic and
// server-side apply), Delete, and Status().Update / Status().Patch.
//
// Every call blocks until the host has the API server's answer; a call with a context that is
// already done returns its error without a request. Requests go out under the
// operator's own identity, so RBAC decides what succeeds; refusals come back as errors that
// IsNotFound, IsConflict, IsForbidden and the predicates of package hosterr recognise.
//
// Objects are types.Object values: the typed structs of package types, your own CRD structs, or
// *types.Unstructured. After a successful Get, Create, Update or Patch the object holds what the
// API server returned (uid, resourceVersion, defaults, ...).
package client

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"

	"wasm-operator.dev/sdk-go/abi"
	"wasm-operator.dev/sdk-go/internal/hostcall"
	"wasm-operator.dev/sdk-go/internal/identity"
	"wasm-operator.dev/sdk-go/types"
)

// ObjectKey names an object: namespace ("" for cluster-scoped kinds) and name.
type ObjectKey = types.NamespacedName

// Object and ObjectList are the types the client reads and writes.
type (
	Object     = types.Object
	ObjectList = types.ObjectList
)

// Client performs Kubernetes requests. The zero configuration is fine: New() needs no arguments.
type Client interface {
	// Get reads the object named by key into obj; obj's type says which kind to read.
	Get(ctx context.Context, key ObjectKey, obj Object, opts ...GetOption) error
	// List reads the objects of list's item kind into list.
	List(ctx context.Context, list ObjectList, opts ...ListOption) error
	// Create creates obj in obj's namespace.
	Create(ctx context.Context, obj Object) error
	// Update replaces obj; its resourceVersion must be current, or the error is a conflict.
	Update(ctx context.Context, obj Object) error
	// Patch applies patch to the object named by obj's namespace and name.
	Patch(ctx context.Context, obj Object, patch Patch, opts ...PatchOption) error
	// Delete deletes obj (by namespace and name).
	Delete(ctx context.Context, obj Object, opts ...DeleteOption) error
	// Status writes the status subresource.
	Status() StatusWriter
}

// StatusWriter writes the status subresource of an object, which Update and Patch on the object
// itself ignore for kinds that have one.
type StatusWriter interface {
	Update(ctx context.Context, obj Object) error
	Patch(ctx context.Context, obj Object, patch Patch, opts ...PatchOption) error
}

// New returns a Client. Server-side apply patches use the operator's name as field manager unless
// a FieldOwner option says otherwise.
func New() Client { return hostClient{} }

type hostClient struct{}

func (hostClient) Get(ctx context.Context, key ObjectKey, obj Object, opts ...GetOption) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var o getOptions
	for _, opt := range opts {
		opt.applyToGet(&o)
	}
	gvk, err := kindOf(obj)
	if err != nil {
		return err
	}
	result, err := hostcall.Kube(abi.KubeRequest{
		Verb: abi.VerbGet, APIVersion: gvk.APIVersion(), Kind: gvk.Kind,
		Namespace: key.Namespace, Name: key.Name, Cached: o.cached,
	})
	if err != nil {
		return err
	}
	return decodeInto(result, obj, gvk)
}

func (hostClient) List(ctx context.Context, list ObjectList, opts ...ListOption) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var o listOptions
	for _, opt := range opts {
		opt.applyToList(&o)
	}
	gvk := list.ItemGroupVersionKind()
	if gvk.Kind == "" || gvk.Version == "" {
		return fmt.Errorf("client: %T names no item kind (for UnstructuredList use types.NewUnstructuredList)", list)
	}
	result, err := hostcall.Kube(abi.KubeRequest{
		Verb: abi.VerbList, APIVersion: gvk.APIVersion(), Kind: gvk.Kind, Namespace: o.namespace,
		LabelSelector: o.labelSelector, FieldSelector: o.fieldSelector, Cached: o.cached,
	})
	if err != nil {
		return err
	}
	resetValue(list)
	if err := json.Unmarshal(result, list); err != nil {
		return fmt.Errorf("client: decoding %s list: %w", gvk.Kind, err)
	}
	return nil
}

func (hostClient) Create(ctx context.Context, obj Object) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	gvk, body, err := encodeObject(obj)
	if err != nil {
		return err
	}
	result, err := hostcall.Kube(abi.KubeRequest{
		Verb: abi.VerbCreate, APIVersion: gvk.APIVersion(), Kind: gvk.Kind,
		Namespace: obj.GetObjectMeta().Namespace, Body: body,
	})
	if err != nil {
		return err
	}
	return decodeInto(result, obj, gvk)
}

func (hostClient) Update(ctx context.Context, obj Object) error {
	return update(ctx, obj, "")
}

func (hostClient) Patch(ctx context.Context, obj Object, patch Patch, opts ...PatchOption) error {
	return doPatch(ctx, obj, patch, "", opts)
}

func (hostClient) Delete(ctx context.Context, obj Object, opts ...DeleteOption) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var o deleteOptions
	for _, opt := range opts {
		opt.applyToDelete(&o)
	}
	gvk, err := kindOf(obj)
	if err != nil {
		return err
	}
	meta := obj.GetObjectMeta()
	_, err = hostcall.Kube(abi.KubeRequest{
		Verb: abi.VerbDelete, APIVersion: gvk.APIVersion(), Kind: gvk.Kind,
		Namespace: meta.Namespace, Name: meta.Name, PropagationPolicy: string(o.propagation),
	})
	return err
}

func (hostClient) Status() StatusWriter { return statusWriter{} }

type statusWriter struct{}

func (statusWriter) Update(ctx context.Context, obj Object) error {
	return update(ctx, obj, "status")
}

func (statusWriter) Patch(ctx context.Context, obj Object, patch Patch, opts ...PatchOption) error {
	return doPatch(ctx, obj, patch, "status", opts)
}

func update(ctx context.Context, obj Object, subresource string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	gvk, body, err := encodeObject(obj)
	if err != nil {
		return err
	}
	meta := obj.GetObjectMeta()
	result, err := hostcall.Kube(abi.KubeRequest{
		Verb: abi.VerbUpdate, APIVersion: gvk.APIVersion(), Kind: gvk.Kind,
		Namespace: meta.Namespace, Name: meta.Name, Subresource: subresource, Body: body,
	})
	if err != nil {
		return err
	}
	return decodeInto(result, obj, gvk)
}

func doPatch(ctx context.Context, obj Object, patch Patch, subresource string, opts []PatchOption) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var o patchOptions
	for _, opt := range opts {
		opt.applyToPatch(&o)
	}
	if o.force && patch.Type() != abi.PatchApply {
		return fmt.Errorf("client: ForceOwnership only applies to server-side apply patches")
	}
	gvk, err := kindOf(obj)
	if err != nil {
		return err
	}
	obj.SetGroupVersionKind(gvk) // an apply body must carry apiVersion and kind
	body, err := patch.Data(obj)
	if err != nil {
		return fmt.Errorf("client: computing %s patch: %w", patch.Type(), err)
	}
	// Only server-side apply needs a field manager; other patches send one only when asked to
	// (FieldOwner), because the host fills in the operator's name anyway and an unasked-for field
	// would make the request differ from what the caller wrote.
	manager := o.fieldManager
	if manager == "" && patch.Type() == abi.PatchApply {
		manager = identity.Name()
	}
	if patch.Type() == abi.PatchApply && manager == "" {
		return fmt.Errorf("client: server-side apply needs a field manager: pass client.FieldOwner(...) or run inside an initialised operator")
	}
	meta := obj.GetObjectMeta()
	result, err := hostcall.Kube(abi.KubeRequest{
		Verb: abi.VerbPatch, APIVersion: gvk.APIVersion(), Kind: gvk.Kind,
		Namespace: meta.Namespace, Name: meta.Name, Subresource: subresource,
		PatchType: patch.Type(), FieldManager: manager, Force: o.force, Body: body,
	})
	if err != nil {
		return err
	}
	return decodeInto(result, obj, gvk)
}

// kindOf returns obj's kind, refusing an object that names none (an Unstructured without
// apiVersion or kind).
func kindOf(obj Object) (types.GroupVersionKind, error) {
	gvk := obj.GroupVersionKind()
	if gvk.Kind == "" || gvk.Version == "" {
		return gvk, fmt.Errorf("client: %T has no apiVersion/kind; set them (types.NewUnstructured does)", obj)
	}
	return gvk, nil
}

// encodeObject fills in apiVersion and kind, which typed structs usually leave empty, and
// marshals the object.
func encodeObject(obj Object) (types.GroupVersionKind, json.RawMessage, error) {
	gvk, err := kindOf(obj)
	if err != nil {
		return gvk, nil, err
	}
	obj.SetGroupVersionKind(gvk)
	body, err := json.Marshal(obj)
	if err != nil {
		return gvk, nil, fmt.Errorf("client: encoding %s: %w", gvk.Kind, err)
	}
	return gvk, body, nil
}

// decodeInto replaces obj's contents with the API server's answer. The object is zeroed first:
// json.Unmarshal merges into existing maps, which would keep labels or data the server no longer
// has.
func decodeInto(data json.RawMessage, obj Object, gvk types.GroupVersionKind) error {
	resetValue(obj)
	if err := json.Unmarshal(data, obj); err != nil {
		return fmt.Errorf("client: decoding %s: %w", gvk.Kind, err)
	}
	obj.SetGroupVersionKind(gvk)
	return nil
}

// resetValue sets *ptr to its zero value. This is the only reflection the client does, and
// TinyGo's reflect supports it (reflect.Ptr rather than its newer alias Pointer, which older
// TinyGo releases lack).
func resetValue(ptr any) {
	v := reflect.ValueOf(ptr)
	if v.Kind() == reflect.Ptr && !v.IsNil() {
		v.Elem().Set(reflect.Zero(v.Elem().Type()))
	}
}
