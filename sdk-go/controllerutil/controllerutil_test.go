// Finalizer, owner-reference and condition helpers.

package controllerutil

import (
	"testing"
	"time"

	"wasm-operator.dev/sdk-go/types"
)

func TestFinalizers(t *testing.T) {
	cm := &types.ConfigMap{}
	if ContainsFinalizer(cm, "a/b") {
		t.Fatal("empty object has a finalizer")
	}
	if !AddFinalizer(cm, "a/b") || AddFinalizer(cm, "a/b") {
		t.Fatal("AddFinalizer must change once")
	}
	AddFinalizer(cm, "other")
	if !ContainsFinalizer(cm, "a/b") || len(cm.Finalizers) != 2 {
		t.Fatalf("finalizers %v", cm.Finalizers)
	}
	original := cm.Finalizers
	if !RemoveFinalizer(cm, "a/b") || RemoveFinalizer(cm, "a/b") {
		t.Fatal("RemoveFinalizer must change once")
	}
	if len(cm.Finalizers) != 1 || cm.Finalizers[0] != "other" {
		t.Fatalf("finalizers %v", cm.Finalizers)
	}
	if original[0] != "a/b" {
		t.Fatal("RemoveFinalizer modified the slice it was given in place")
	}
}

func owner() *types.Unstructured {
	o := types.NewUnstructured("demo.wasm-operator.dev/v1alpha1", "WebApp")
	o.Name, o.Namespace, o.UID = "web", "ns", "uid-1"
	return o
}

func TestSetControllerReference(t *testing.T) {
	d := &types.Deployment{ObjectMeta: types.ObjectMeta{Name: "web", Namespace: "ns"}}
	if err := SetControllerReference(owner(), d); err != nil {
		t.Fatal(err)
	}
	if err := SetControllerReference(owner(), d); err != nil {
		t.Fatalf("setting the same controller again: %v", err)
	}
	if len(d.OwnerReferences) != 1 {
		t.Fatalf("refs %+v", d.OwnerReferences)
	}
	ref := d.OwnerReferences[0]
	if ref.APIVersion != "demo.wasm-operator.dev/v1alpha1" || ref.Kind != "WebApp" || ref.Name != "web" || ref.UID != "uid-1" ||
		!ref.IsController() || ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
		t.Fatalf("ref %+v", ref)
	}
	if !HasControllerReference(owner(), d) || GetControllerOf(d) == nil {
		t.Fatal("controller not found")
	}

	other := owner()
	other.Name, other.UID = "other", "uid-2"
	err := SetControllerReference(other, d)
	if _, already := err.(*AlreadyOwnedError); !already {
		t.Fatalf("second controller: err = %v", err)
	}
	if err := SetOwnerReference(other, d); err != nil || len(d.OwnerReferences) != 2 || d.OwnerReferences[1].IsController() {
		t.Fatalf("plain owner: %v %+v", err, d.OwnerReferences)
	}
	if !RemoveOwnerReference(other, d) || len(d.OwnerReferences) != 1 {
		t.Fatalf("remove: %+v", d.OwnerReferences)
	}
}

func TestOwnerReferenceRules(t *testing.T) {
	noUID := owner()
	noUID.UID = ""
	if err := SetControllerReference(noUID, &types.ConfigMap{ObjectMeta: types.ObjectMeta{Namespace: "ns"}}); err == nil {
		t.Error("owner without uid accepted")
	}
	if err := SetControllerReference(owner(), &types.ConfigMap{ObjectMeta: types.ObjectMeta{Namespace: "elsewhere"}}); err == nil {
		t.Error("cross-namespace owner accepted")
	}
	clusterOwner := types.NewUnstructured("v1", "Namespace")
	clusterOwner.Name, clusterOwner.UID = "ns", "u"
	if err := SetOwnerReference(clusterOwner, &types.ConfigMap{ObjectMeta: types.ObjectMeta{Namespace: "ns"}}); err != nil {
		t.Errorf("cluster-scoped owner refused: %v", err)
	}
}

func TestSetConditionKeepsTransitionTimeUnlessStatusChanges(t *testing.T) {
	clock := time.Date(2025, 1, 1, 10, 0, 0, 0, time.UTC)
	now = func() time.Time { return clock }
	defer func() { now = time.Now }()

	var conditions []types.Condition
	if !SetCondition(&conditions, types.Condition{Type: "Ready", Status: types.ConditionFalse, Reason: "Progressing"}) {
		t.Fatal("adding a condition is a change")
	}
	first := conditions[0].LastTransitionTime
	if !first.Equal(clock) {
		t.Fatalf("transition time %v", first)
	}

	clock = clock.Add(time.Minute)
	if !SetCondition(&conditions, types.Condition{Type: "Ready", Status: types.ConditionFalse, Reason: "Progressing", Message: "2 of 3"}) {
		t.Fatal("a new message is a change")
	}
	if !conditions[0].LastTransitionTime.Equal(first.Time) {
		t.Fatal("transition time moved without a status change")
	}
	if SetCondition(&conditions, types.Condition{Type: "Ready", Status: types.ConditionFalse, Reason: "Progressing", Message: "2 of 3"}) {
		t.Fatal("an identical condition is no change")
	}

	clock = clock.Add(time.Minute)
	SetCondition(&conditions, types.Condition{Type: "Ready", Status: types.ConditionTrue, Reason: "Available"})
	if !conditions[0].LastTransitionTime.Equal(clock) || !IsConditionTrue(conditions, "Ready") {
		t.Fatalf("status flip: %+v", conditions[0])
	}
	if len(conditions) != 1 {
		t.Fatalf("duplicated condition: %+v", conditions)
	}
	if FindCondition(conditions, "Missing") != nil || !RemoveCondition(&conditions, "Ready") || len(conditions) != 0 {
		t.Fatal("find/remove")
	}
}
