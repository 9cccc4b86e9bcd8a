// The reconcile against controller-runtime's fake client: a missing copy is created with the
// nonce, a lower nonce is raised, an equal or higher one and a vanished input are left alone.

package main

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func resource(namespace string, nonce int64) *TestResource {
	return &TestResource{
		ObjectMeta: metav1.ObjectMeta{Name: "token", Namespace: namespace},
		Spec:       TestResourceSpec{Nonce: nonce},
	}
}

// reconcileWith runs one reconcile of ring-1/token over a cluster holding objects; it returns
// the nonce of ring-2/token afterwards (-1: none).
func reconcileWith(t *testing.T, objects ...client.Object) int64 {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := addToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objects...).Build()
	r := &Reconciler{Cache: c, Reader: c, Writer: c, OutNamespace: "ring-2"}
	req := ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "ring-1", Name: "token"}}
	result, err := r.Reconcile(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if !result.IsZero() {
		t.Fatalf("result %+v, want none", result)
	}
	var out TestResource
	err = c.Get(context.Background(), types.NamespacedName{Namespace: "ring-2", Name: "token"}, &out)
	if err != nil {
		if client.IgnoreNotFound(err) == nil {
			return -1
		}
		t.Fatal(err)
	}
	return out.Spec.Nonce
}

func TestCreatesTheNextResource(t *testing.T) {
	if got := reconcileWith(t, resource("ring-1", 0)); got != 0 {
		t.Fatalf("next nonce %d, want 0", got)
	}
}

func TestRaisesALowerNonce(t *testing.T) {
	if got := reconcileWith(t, resource("ring-1", 7), resource("ring-2", 6)); got != 7 {
		t.Fatalf("next nonce %d, want 7", got)
	}
}

func TestLeavesAnEqualOrHigherNonce(t *testing.T) {
	for _, nonce := range []int64{7, 8} {
		if got := reconcileWith(t, resource("ring-1", 7), resource("ring-2", nonce)); got != nonce {
			t.Fatalf("next nonce %d, want %d left alone", got, nonce)
		}
	}
}

func TestAVanishedInputNeedsNothing(t *testing.T) {
	if got := reconcileWith(t); got != -1 {
		t.Fatalf("next nonce %d, want no object", got)
	}
}

func TestEveryMissingSettingIsNamed(t *testing.T) {
	err := config{}.validate()
	want := "required: --in-namespace (RING_IN_NAMESPACE) and --out-namespace (RING_OUT_NAMESPACE)"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
	if err := (config{inNamespace: "a", outNamespace: "b"}).validate(); err != nil {
		t.Fatal(err)
	}
}
