// Package controllerutil has the helpers of controller-runtime's controllerutil and of
// apimachinery's meta conditions: finalizers, owner references and status conditions. They only
// change the object in memory; write it back with the client.
package controllerutil

import "wasm-operator.dev/sdk-go/types"

// ContainsFinalizer reports whether obj has the finalizer.
func ContainsFinalizer(obj types.Object, finalizer string) bool {
	for _, f := range obj.GetObjectMeta().Finalizers {
		if f == finalizer {
			return true
		}
	}
	return false
}

// AddFinalizer adds the finalizer unless obj has it already, and reports whether it changed obj.
func AddFinalizer(obj types.Object, finalizer string) bool {
	if ContainsFinalizer(obj, finalizer) {
		return false
	}
	meta := obj.GetObjectMeta()
	meta.Finalizers = append(meta.Finalizers, finalizer)
	return true
}

// RemoveFinalizer removes every occurrence of the finalizer and reports whether it changed obj.
func RemoveFinalizer(obj types.Object, finalizer string) bool {
	meta := obj.GetObjectMeta()
	kept := meta.Finalizers[:0:0]
	for _, f := range meta.Finalizers {
		if f != finalizer {
			kept = append(kept, f)
		}
	}
	if len(kept) == len(meta.Finalizers) {
		return false
	}
	meta.Finalizers = kept
	return true
}
