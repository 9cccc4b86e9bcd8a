// The ring operator against a fake host: create, raise, or leave alone the next TestResource, and
// the init that takes the namespaces from the configuration.

package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"wasm-operator.dev/operators-go/internal/transcript"
	"wasm-operator.dev/sdk-go/abi"
	"wasm-operator.dev/sdk-go/client"
	"wasm-operator.dev/sdk-go/fakehost"
	"wasm-operator.dev/sdk-go/reconcile"
)

func testResource(namespace string, nonce int) string {
	object, _ := json.Marshal(map[string]any{
		"apiVersion": "demo.wasm-operator.dev/v1alpha1", "kind": "TestResource",
		"metadata": map[string]any{"name": "token", "namespace": namespace, "uid": "u-" + namespace, "resourceVersion": "5"},
		"spec":     map[string]any{"nonce": nonce},
	})
	return string(object)
}

// fakeHost holds next (the TestResource in the out namespace, "" for none) and accepts writes.
func fakeHost(t *testing.T, next string) *fakehost.Host {
	t.Helper()
	h := fakehost.New()
	t.Cleanup(h.Install())
	h.OnKube = func(req abi.KubeRequest) abi.HostResponse {
		if req.Verb == abi.VerbGet {
			if next == "" {
				return fakehost.NotFound("testresources.demo.wasm-operator.dev", req.Name)
			}
			return fakehost.OK(next)
		}
		return fakehost.OK(req.Body)
	}
	return h
}

func forward(t *testing.T, nonce int) {
	t.Helper()
	r := &Reconciler{Client: client.New(), Config: Config{InNamespace: "ring-1", OutNamespace: "ring-2"}}
	req := reconcile.Request{APIVersion: "demo.wasm-operator.dev/v1alpha1", Kind: "TestResource",
		Object: json.RawMessage(testResource("ring-1", nonce))}
	req.Namespace, req.Name = "ring-1", "token"
	result, err := r.Reconcile(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if !result.IsZero() {
		t.Fatalf("result %+v, want {}", result)
	}
}

const getNext = `{"verb":"get","apiVersion":"demo.wasm-operator.dev/v1alpha1","kind":"TestResource","namespace":"ring-2","name":"token"}`

func TestCreatesTheNextResource(t *testing.T) {
	h := fakeHost(t, "")
	forward(t, 0)
	transcript.Expect(t, h.RawKubeRequests, getNext,
		`{"verb":"create","apiVersion":"demo.wasm-operator.dev/v1alpha1","kind":"TestResource","namespace":"ring-2",
		  "body":{"apiVersion":"demo.wasm-operator.dev/v1alpha1","kind":"TestResource",
		   "metadata":{"name":"token","namespace":"ring-2"},"spec":{"nonce":0}}}`)
}

func TestRaisesALowerNonce(t *testing.T) {
	h := fakeHost(t, testResource("ring-2", 6))
	forward(t, 7)
	transcript.Expect(t, h.RawKubeRequests, getNext,
		`{"verb":"patch","apiVersion":"demo.wasm-operator.dev/v1alpha1","kind":"TestResource","namespace":"ring-2","name":"token",
		  "patchType":"merge","body":{"spec":{"nonce":7}}}`)
}

func TestLeavesAnEqualOrHigherNonce(t *testing.T) {
	for _, nonce := range []int{7, 8} {
		h := fakeHost(t, testResource("ring-2", nonce))
		forward(t, 7)
		transcript.Expect(t, h.RawKubeRequests, getNext)
	}
}

func TestLargeNoncesStayExact(t *testing.T) {
	h := fakeHost(t, testResource("ring-2", 1))
	forward(t, 1<<53+1) // beyond float64's exact integers
	if body := string(h.KubeRequests[1].Body); body != `{"spec":{"nonce":9007199254740993}}` {
		t.Fatalf("patch %s", body)
	}
}

func TestOtherReadErrorsFail(t *testing.T) {
	h := fakeHost(t, "")
	h.OnKube = func(abi.KubeRequest) abi.HostResponse { return fakehost.APIError(403, "Forbidden", "forbidden") }
	r := &Reconciler{Client: client.New(), Config: Config{InNamespace: "ring-1", OutNamespace: "ring-2"}}
	req := reconcile.Request{Object: json.RawMessage(testResource("ring-1", 1))}
	req.Namespace, req.Name = "ring-1", "token"
	if _, err := r.Reconcile(context.Background(), req); err == nil {
		t.Fatal("a forbidden read must fail the reconcile")
	}
	if len(h.KubeRequests) != 1 {
		t.Fatalf("nothing may be written: %d requests", len(h.KubeRequests))
	}
}

// The module as the host drives it: the namespaces come from the configuration, both required.
func TestThroughTheExports(t *testing.T) {
	h := fakeHost(t, "")
	h.Config = json.RawMessage(`{"inNamespace":"ring-4","outNamespace":"ring-5"}`)
	if code := h.Init(); code != abi.ReturnOK {
		t.Fatalf("init: %d %s", code, h.Result())
	}
	transcript.Expect(t, [][]byte{h.Result()},
		`{"for":{"apiVersion":"demo.wasm-operator.dev/v1alpha1","kind":"TestResource","namespace":"ring-4","predicates":[]},"owns":[],"watches":[]}`)

	wire := abi.ReconcileRequest{APIVersion: "demo.wasm-operator.dev/v1alpha1", Kind: "TestResource", Namespace: "ring-4", Name: "token"}
	if code := h.Reconcile(wire); code != abi.ReturnOK || string(h.Result()) != `{}` || len(h.KubeRequests) != 0 {
		t.Fatalf("a vanished object: code %d, result %s, %d requests", code, h.Result(), len(h.KubeRequests))
	}
	wire.Object = json.RawMessage(testResource("ring-4", 3))
	if code := h.Reconcile(wire); code != abi.ReturnOK || h.KubeRequests[1].Namespace != "ring-5" {
		t.Fatalf("reconcile: code %d, result %s, requests %+v", code, h.Result(), h.KubeRequests)
	}

	for config, missing := range map[string]string{
		`{"outNamespace":"ring-5"}`: `config key "inNamespace" is required`,
		`{"inNamespace":"ring-4"}`:  `config key "outNamespace" is required`,
		`{}`:                        `config keys "inNamespace" and "outNamespace" are required`,
	} {
		h.Config = json.RawMessage(config)
		if code := h.Init(); code != abi.ReturnError || !strings.Contains(string(h.Result()), strings.ReplaceAll(missing, `"`, `\"`)) {
			t.Errorf("init with %s: code %d, result %s", config, code, h.Result())
		}
	}
}
