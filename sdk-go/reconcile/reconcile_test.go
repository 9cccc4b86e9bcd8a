// Request decoding, terminal errors and results.

package reconcile_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"wasm-operator.dev/sdk-go/reconcile"
	"wasm-operator.dev/sdk-go/types"
)

func TestDecodeObject(t *testing.T) {
	var cm types.ConfigMap
	for _, missing := range []string{"", "null"} {
		found, err := reconcile.Request{Object: []byte(missing)}.DecodeObject(&cm)
		if found || err != nil {
			t.Fatalf("object %q: found %v, err %v", missing, found, err)
		}
	}
	found, err := reconcile.Request{Object: []byte(`{"metadata":{"name":"x"},"data":{"k":"v"}}`)}.DecodeObject(&cm)
	if !found || err != nil || cm.Name != "x" || cm.Data["k"] != "v" {
		t.Fatalf("found %v, err %v, %+v", found, err, cm)
	}
	if _, err := (reconcile.Request{Object: []byte(`{"data":7}`)}).DecodeObject(&cm); err == nil {
		t.Fatal("a malformed object decoded")
	}
}

func TestAbsentReason(t *testing.T) {
	for wire, want := range map[string]reconcile.AbsentReason{
		"deleted": reconcile.AbsentDeleted, "notSelected": reconcile.AbsentNotSelected, "unknown": reconcile.AbsentUnknown,
		"": reconcile.AbsentUnknown, "Deleted": reconcile.AbsentUnknown, "gone": reconcile.AbsentUnknown,
	} {
		if got := reconcile.ParseAbsentReason(wire); got != want {
			t.Errorf("ParseAbsentReason(%q) = %q, want %q", wire, got, want)
		}
	}
	for reason, deleted := range map[reconcile.AbsentReason]bool{
		reconcile.AbsentDeleted: true, reconcile.AbsentNotSelected: false, reconcile.AbsentUnknown: false, "": false,
	} {
		if got := (reconcile.Request{AbsentReason: reason}).ObjectDeleted(); got != deleted {
			t.Errorf("ObjectDeleted with reason %q = %v", reason, got)
		}
	}
}

func TestTerminalError(t *testing.T) {
	cause := errors.New("spec.replicas must be positive")
	err := fmt.Errorf("reconciling web: %w", reconcile.TerminalError(cause))
	if !reconcile.IsTerminal(err) || !errors.Is(err, cause) {
		t.Fatal("terminal error not recognised through wrapping")
	}
	if reconcile.IsTerminal(cause) || reconcile.TerminalError(nil) != nil {
		t.Fatal("plain errors are not terminal, and nil stays nil")
	}
}

func TestResultIsZero(t *testing.T) {
	if !(reconcile.Result{}).IsZero() || (reconcile.Result{Requeue: true}).IsZero() || (reconcile.Result{RequeueAfter: time.Second}).IsZero() {
		t.Fatal("IsZero")
	}
}
