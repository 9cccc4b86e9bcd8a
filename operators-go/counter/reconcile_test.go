// The counter operator against a fake host: the spec's worked checksums, no write for a repeated
// generation, and a memory that outlives deleted objects and failed writes correctly.

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"testing"

	"wasm-operator.dev/operators-go/internal/transcript"
	"wasm-operator.dev/sdk-go/abi"
	"wasm-operator.dev/sdk-go/client"
	"wasm-operator.dev/sdk-go/fakehost"
	"wasm-operator.dev/sdk-go/reconcile"
)

func fakeHost(t *testing.T) *fakehost.Host {
	t.Helper()
	h := fakehost.New()
	t.Cleanup(h.Install())
	h.OnKube = func(req abi.KubeRequest) abi.HostResponse { return fakehost.OK(req.Body) }
	return h
}

// request carries the Counter namespace/name at generation, or no object when generation is 0.
func request(namespace, name string, generation int64) reconcile.Request {
	req := reconcile.Request{APIVersion: "demo.wasm-operator.dev/v1alpha1", Kind: "Counter"}
	req.Namespace, req.Name = namespace, name
	if generation > 0 {
		req.Object = json.RawMessage(fmt.Sprintf(`{"apiVersion":"demo.wasm-operator.dev/v1alpha1","kind":"Counter",`+
			`"metadata":{"name":%q,"namespace":%q,"uid":"u-%s","generation":%d},"spec":{}}`, name, namespace, name, generation))
	}
	return req
}

func see(t *testing.T, r *Reconciler, req reconcile.Request) {
	t.Helper()
	result, err := r.Reconcile(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if !result.IsZero() {
		t.Fatalf("result %+v, want {}", result)
	}
}

func statusPatch(namespace, name, status string) string {
	return `{"verb":"patch","apiVersion":"demo.wasm-operator.dev/v1alpha1","kind":"Counter","namespace":"` + namespace +
		`","name":"` + name + `","subresource":"status","patchType":"merge","body":{"status":` + status + `}}`
}

// The worked example of docs/examples.md.
func TestWorkedExampleChecksums(t *testing.T) {
	h := fakeHost(t)
	r := NewReconciler(client.New())
	see(t, r, request("default", "a", 1))
	see(t, r, request("default", "a", 2))
	see(t, r, request("default", "a", 2)) // a generation seen before: nothing to write
	transcript.Expect(t, h.RawKubeRequests,
		statusPatch("default", "a", `{"observedGenerations":[1],"totalSeen":1,"checksum":"d6bd7b4133c64266"}`),
		statusPatch("default", "a", `{"observedGenerations":[1,2],"totalSeen":2,"checksum":"01aa10780731a9fa"}`))
}

func TestObjectsShareTotalAndChecksum(t *testing.T) {
	h := fakeHost(t)
	r := NewReconciler(client.New())
	see(t, r, request("default", "a", 1))
	see(t, r, request("other", "b", 4))
	see(t, r, request("default", "a", 2))
	transcript.Expect(t, h.RawKubeRequests,
		statusPatch("default", "a", `{"observedGenerations":[1],"totalSeen":1,"checksum":"d6bd7b4133c64266"}`),
		statusPatch("other", "b", fmt.Sprintf(`{"observedGenerations":[4],"totalSeen":2,"checksum":"%016x"}`,
			fnv1a("default/a@1;other/b@4;"))),
		statusPatch("default", "a", fmt.Sprintf(`{"observedGenerations":[1,2],"totalSeen":3,"checksum":"%016x"}`,
			fnv1a("default/a@1;other/b@4;default/a@2;"))))
}

// A deleted object is forgotten, but what was seen still counts: a new object of the same name
// starts a fresh list while totalSeen and the checksum go on.
func TestDeletionForgetsTheObjectOnly(t *testing.T) {
	h := fakeHost(t)
	r := NewReconciler(client.New())
	see(t, r, request("default", "a", 1))
	see(t, r, request("default", "a", 0))
	see(t, r, request("default", "a", 1))
	transcript.Expect(t, h.RawKubeRequests,
		statusPatch("default", "a", `{"observedGenerations":[1],"totalSeen":1,"checksum":"d6bd7b4133c64266"}`),
		statusPatch("default", "a", fmt.Sprintf(`{"observedGenerations":[1],"totalSeen":2,"checksum":"%016x"}`,
			fnv1a("default/a@1;default/a@1;"))))
}

// A failed write leaves the memory as it was, so the retry writes the same status instead of
// finding the generation already seen and writing nothing.
func TestFailedWriteIsRetriedWithTheSameStatus(t *testing.T) {
	h := fakeHost(t)
	r := NewReconciler(client.New())
	h.OnKube = func(req abi.KubeRequest) abi.HostResponse { return fakehost.Conflict("counters", req.Name) }
	if _, err := r.Reconcile(context.Background(), request("default", "a", 1)); !client.IsConflict(err) {
		t.Fatalf("error %v", err)
	}
	h.OnKube = func(req abi.KubeRequest) abi.HostResponse { return fakehost.OK(req.Body) }
	see(t, r, request("default", "a", 1))
	want := statusPatch("default", "a", `{"observedGenerations":[1],"totalSeen":1,"checksum":"d6bd7b4133c64266"}`)
	transcript.Expect(t, h.RawKubeRequests, want, want)
}

// A fresh instance whose status already says exactly what it would write (the only object, seen
// again after a restart) writes nothing, by the status rule every example follows.
func TestStatusAlreadyShownIsNotRewritten(t *testing.T) {
	h := fakeHost(t)
	req := request("default", "a", 1)
	req.Object = json.RawMessage(`{"apiVersion":"demo.wasm-operator.dev/v1alpha1","kind":"Counter",` +
		`"metadata":{"name":"a","namespace":"default","generation":1},` +
		`"status":{"observedGenerations":[1],"totalSeen":1,"checksum":"d6bd7b4133c64266"}}`)
	see(t, NewReconciler(client.New()), req)
	transcript.Expect(t, h.RawKubeRequests)
}

// The module as the host drives it: the registration, and memory kept between calls.
func TestThroughTheExports(t *testing.T) {
	h := fakeHost(t)
	counter.memory = newMemory() // a fresh instance, however often the test runs
	if code := h.Init(); code != abi.ReturnOK {
		t.Fatalf("init: %d %s", code, h.Result())
	}
	transcript.Expect(t, [][]byte{h.Result()},
		`{"for":{"apiVersion":"demo.wasm-operator.dev/v1alpha1","kind":"Counter","predicates":["generationChanged"]},"owns":[],"watches":[]}`)
	for _, generation := range []int64{1, 2, 2} {
		req := request("default", "a", generation)
		wire := abi.ReconcileRequest{APIVersion: req.APIVersion, Kind: req.Kind, Namespace: "default", Name: "a", Object: req.Object}
		if code := h.Reconcile(wire); code != abi.ReturnOK || string(h.Result()) != `{}` {
			t.Fatalf("reconcile of generation %d: code %d, result %s", generation, code, h.Result())
		}
	}
	transcript.Expect(t, h.RawKubeRequests,
		statusPatch("default", "a", `{"observedGenerations":[1],"totalSeen":1,"checksum":"d6bd7b4133c64266"}`),
		statusPatch("default", "a", `{"observedGenerations":[1,2],"totalSeen":2,"checksum":"01aa10780731a9fa"}`))
}

// fnv1a is the reference the expectations are computed with: the standard library's FNV-1a 64
// over the whole sequence, which the operator must match by continuing its state pair by pair.
func fnv1a(s string) uint64 {
	hash := fnv.New64a()
	hash.Write([]byte(s))
	return hash.Sum64()
}
