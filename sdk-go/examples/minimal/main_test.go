// The example reconciler tested natively against a fake host, as an operator author would.

package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"wasm-operator.dev/sdk-go/abi"
	"wasm-operator.dev/sdk-go/client"
	"wasm-operator.dev/sdk-go/events"
	"wasm-operator.dev/sdk-go/fakehost"
	"wasm-operator.dev/sdk-go/reconcile"
	"wasm-operator.dev/sdk-go/types"
)

// source is the labelled ConfigMap the fake API server holds.
const source = `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cfg","namespace":"ns","uid":"u1",` +
	`"labels":{"wasm-operator.dev/mirror":"true"}},"data":{"a":"1"}}`

func newReconciler() *MirrorReconciler {
	c := client.New()
	return &MirrorReconciler{Client: c, Recorder: events.NewRecorder(c)}
}

func request() reconcile.Request {
	return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "cfg"}}
}

func TestMirrorIsAppliedAndOwned(t *testing.T) {
	h := fakehost.New()
	h.OperatorName = "mirror"
	t.Cleanup(h.Install())
	h.OnKube = func(req abi.KubeRequest) abi.HostResponse {
		if req.Verb == abi.VerbGet {
			return fakehost.OK(source)
		}
		return fakehost.OK(req.Body) // writes come back as sent, as the API server would answer
	}

	result, err := newReconciler().Reconcile(context.Background(), request())
	if err != nil {
		t.Fatal(err)
	}
	if result.RequeueAfter != 10*time.Minute {
		t.Errorf("result %+v", result)
	}
	if len(h.KubeRequests) != 3 {
		t.Fatalf("expected get, apply, event; got %d requests", len(h.KubeRequests))
	}
	if get := h.KubeRequests[0]; !get.Cached || get.Name != "cfg" {
		t.Errorf("get %+v", get)
	}
	apply := h.KubeRequests[1]
	if apply.Verb != abi.VerbPatch || apply.PatchType != abi.PatchApply || !apply.Force ||
		apply.FieldManager != "mirror" || apply.Name != "cfg-mirror" {
		t.Fatalf("apply %+v", apply)
	}
	for _, part := range []string{`"data":{"a":"1"}`, `"uid":"u1","controller":true`} {
		if !strings.Contains(string(apply.Body), part) {
			t.Errorf("apply body lacks %s: %s", part, apply.Body)
		}
	}
	if event := h.KubeRequests[2]; event.Kind != "Event" || !strings.Contains(string(event.Body), `"reason":"Mirrored"`) {
		t.Errorf("event %+v", event)
	}
}

func TestDeletedSourceIsNotAnError(t *testing.T) {
	h := fakehost.New()
	t.Cleanup(h.Install())
	h.OnKube = func(req abi.KubeRequest) abi.HostResponse { return fakehost.NotFound("configmaps", req.Name) }
	if _, err := newReconciler().Reconcile(context.Background(), request()); err != nil {
		t.Fatalf("a deleted source must not fail the reconcile: %v", err)
	}
	if len(h.KubeRequests) != 1 {
		t.Fatalf("nothing but the get should happen, got %d requests", len(h.KubeRequests))
	}
}
