// Owner references: who owns an object, and who controls it.

package controllerutil

import (
	"fmt"

	"wasm-operator.dev/sdk-go/types"
)

// AlreadyOwnedError: the object already has a different controller.
type AlreadyOwnedError struct {
	Object types.Object
	Owner  types.OwnerReference
}

func (e *AlreadyOwnedError) Error() string {
	return fmt.Sprintf("%s %q is already controlled by %s %q", e.Object.GroupVersionKind().Kind,
		e.Object.GetObjectMeta().Name, e.Owner.Kind, e.Owner.Name)
}

// SetControllerReference makes owner the controller of object (controller=true,
// blockOwnerDeletion=true), so events on object enqueue owner through Owns, and the garbage
// collector deletes object with owner. It fails if another object is already the controller, if
// owner has no uid yet (it must have been read from or created in the API server), or if a
// namespaced owner would own an object in another namespace, which Kubernetes does not allow.
func SetControllerReference(owner, object types.Object) error {
	ref, err := referenceTo(owner, object)
	if err != nil {
		return err
	}
	if existing := GetControllerOf(object); existing != nil && !sameOwner(*existing, ref) {
		return &AlreadyOwnedError{Object: object, Owner: *existing}
	}
	yes := true
	ref.Controller, ref.BlockOwnerDeletion = &yes, &yes
	upsertOwnerReference(object, ref)
	return nil
}

// SetOwnerReference adds owner as a (non-controlling) owner of object, or updates the existing
// reference. Owned objects are garbage-collected once all their owners are gone.
func SetOwnerReference(owner, object types.Object) error {
	ref, err := referenceTo(owner, object)
	if err != nil {
		return err
	}
	upsertOwnerReference(object, ref)
	return nil
}

// RemoveOwnerReference drops owner from object's owner references and reports whether it did.
func RemoveOwnerReference(owner, object types.Object) bool {
	gvk := owner.GroupVersionKind()
	target := types.OwnerReference{APIVersion: gvk.APIVersion(), Kind: gvk.Kind, Name: owner.GetObjectMeta().Name}
	meta := object.GetObjectMeta()
	kept := meta.OwnerReferences[:0:0]
	for _, r := range meta.OwnerReferences {
		if !sameOwner(r, target) {
			kept = append(kept, r)
		}
	}
	changed := len(kept) != len(meta.OwnerReferences)
	meta.OwnerReferences = kept
	return changed
}

// GetControllerOf returns object's controller reference, or nil.
func GetControllerOf(object types.Object) *types.OwnerReference {
	refs := object.GetObjectMeta().OwnerReferences
	for i := range refs {
		if refs[i].IsController() {
			return &refs[i]
		}
	}
	return nil
}

// HasControllerReference reports whether owner is object's controller.
func HasControllerReference(owner, object types.Object) bool {
	ref := GetControllerOf(object)
	if ref == nil {
		return false
	}
	gvk := owner.GroupVersionKind()
	return sameOwner(*ref, types.OwnerReference{APIVersion: gvk.APIVersion(), Kind: gvk.Kind, Name: owner.GetObjectMeta().Name})
}

func referenceTo(owner, object types.Object) (types.OwnerReference, error) {
	ownerMeta, objectMeta := owner.GetObjectMeta(), object.GetObjectMeta()
	gvk := owner.GroupVersionKind()
	if gvk.Kind == "" || gvk.Version == "" {
		return types.OwnerReference{}, fmt.Errorf("owner %T has no apiVersion/kind", owner)
	}
	if ownerMeta.UID == "" {
		return types.OwnerReference{}, fmt.Errorf("owner %s %q has no uid: read it from the API server first", gvk.Kind, ownerMeta.Name)
	}
	if ownerMeta.Namespace != "" && ownerMeta.Namespace != objectMeta.Namespace {
		return types.OwnerReference{}, fmt.Errorf("%s %q in namespace %q cannot own an object in namespace %q",
			gvk.Kind, ownerMeta.Name, ownerMeta.Namespace, objectMeta.Namespace)
	}
	return types.OwnerReference{APIVersion: gvk.APIVersion(), Kind: gvk.Kind, Name: ownerMeta.Name, UID: ownerMeta.UID}, nil
}

// upsertOwnerReference replaces the reference to the same owner, or appends it.
func upsertOwnerReference(object types.Object, ref types.OwnerReference) {
	meta := object.GetObjectMeta()
	for i := range meta.OwnerReferences {
		if sameOwner(meta.OwnerReferences[i], ref) {
			meta.OwnerReferences[i] = ref
			return
		}
	}
	meta.OwnerReferences = append(meta.OwnerReferences, ref)
}

// sameOwner compares owners by API group, kind and name, as controller-runtime does: the version
// may differ between references to the same object.
func sameOwner(a, b types.OwnerReference) bool {
	return types.GVK(a.APIVersion, a.Kind).Group == types.GVK(b.APIVersion, b.Kind).Group &&
		a.Kind == b.Kind && a.Name == b.Name
}
