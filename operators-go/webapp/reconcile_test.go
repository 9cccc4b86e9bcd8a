// The webapp operator against a fake API server: the exact requests of docs/examples.md, in order.

package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"wasm-operator.dev/operators-go/internal/conventions"
	"wasm-operator.dev/operators-go/internal/transcript"
	"wasm-operator.dev/sdk-go/abi"
	"wasm-operator.dev/sdk-go/client"
	"wasm-operator.dev/sdk-go/fakehost"
	"wasm-operator.dev/sdk-go/reconcile"
	"wasm-operator.dev/sdk-go/types"
)

var now = time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)

// fakeCluster answers like an API server that accepts every write: objects come back as sent,
// and an applied Deployment reports readyReplicas ready pods.
func fakeCluster(t *testing.T, readyReplicas int) *fakehost.Host {
	t.Helper()
	h := fakehost.New()
	h.OperatorName = "webapp-instance-3" // the host's name for it; the example's name must win
	t.Cleanup(h.Install())
	h.OnKube = func(req abi.KubeRequest) abi.HostResponse {
		if req.Verb == abi.VerbPatch && req.Kind == "Deployment" {
			var deployment map[string]any
			if err := json.Unmarshal(req.Body, &deployment); err != nil {
				t.Fatal(err)
			}
			deployment["status"] = map[string]any{"replicas": 2, "readyReplicas": readyReplicas}
			return fakehost.OK(deployment)
		}
		return fakehost.OK(req.Body)
	}
	return h
}

func newReconciler() *Reconciler {
	c := client.New()
	clock := func() time.Time { return now }
	return &Reconciler{Client: c, Recorder: conventions.NewRecorder(c, operatorName, clock), Now: clock,
		Config: Config{RegistryNamespace: "registry"}}
}

func request(object string) reconcile.Request {
	req := reconcile.Request{APIVersion: "demo.wasm-operator.dev/v1alpha1", Kind: "WebApp", Object: json.RawMessage(object)}
	req.Namespace, req.Name = "shop", "web"
	return req
}

func mustReconcile(t *testing.T, req reconcile.Request) {
	t.Helper()
	result, err := newReconciler().Reconcile(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if !result.IsZero() {
		t.Fatalf("result %+v, want {}", result)
	}
}

// A new WebApp as the API server stores it (defaults applied), with managedFields the operator
// does not model but must send back untouched.
const newWebApp = `{"apiVersion":"demo.wasm-operator.dev/v1alpha1","kind":"WebApp",
 "metadata":{"name":"web","namespace":"shop","uid":"u-1","generation":1,"resourceVersion":"100",
  "creationTimestamp":"2026-01-01T00:00:00Z",
  "managedFields":[{"manager":"kubectl","operation":"Apply","apiVersion":"demo.wasm-operator.dev/v1alpha1"}]},
 "spec":{"image":"nginx:1.27","replicas":2,"port":8080}}`

const (
	// The requests every reconcile of that WebApp applies, steps 3 to 5.
	applyDeployment = `{"verb":"patch","apiVersion":"apps/v1","kind":"Deployment","namespace":"shop","name":"web",
 "patchType":"apply","fieldManager":"webapp","force":true,
 "body":{"apiVersion":"apps/v1","kind":"Deployment",
  "metadata":{"name":"web","namespace":"shop",
   "labels":{"app.kubernetes.io/name":"webapp","app.kubernetes.io/instance":"web"},
   "ownerReferences":[{"apiVersion":"demo.wasm-operator.dev/v1alpha1","kind":"WebApp","name":"web","uid":"u-1","controller":true,"blockOwnerDeletion":true}]},
  "spec":{"replicas":2,
   "selector":{"matchLabels":{"app.kubernetes.io/instance":"web"}},
   "template":{"metadata":{"labels":{"app.kubernetes.io/name":"webapp","app.kubernetes.io/instance":"web"}},
    "spec":{"containers":[{"name":"app","image":"nginx:1.27","ports":[{"name":"http","containerPort":8080}]}]}}}}}`
	applyService = `{"verb":"patch","apiVersion":"v1","kind":"Service","namespace":"shop","name":"web",
 "patchType":"apply","fieldManager":"webapp","force":true,
 "body":{"apiVersion":"v1","kind":"Service",
  "metadata":{"name":"web","namespace":"shop",
   "labels":{"app.kubernetes.io/name":"webapp","app.kubernetes.io/instance":"web"},
   "ownerReferences":[{"apiVersion":"demo.wasm-operator.dev/v1alpha1","kind":"WebApp","name":"web","uid":"u-1","controller":true,"blockOwnerDeletion":true}]},
  "spec":{"selector":{"app.kubernetes.io/instance":"web"},"ports":[{"name":"http","port":8080,"targetPort":8080}]}}}`
	applyRegistryEntry = `{"verb":"patch","apiVersion":"v1","kind":"ConfigMap","namespace":"registry","name":"webapp-shop-web",
 "patchType":"apply","fieldManager":"webapp","force":true,
 "body":{"apiVersion":"v1","kind":"ConfigMap",
  "metadata":{"name":"webapp-shop-web","namespace":"registry","labels":{"app.kubernetes.io/name":"webapp"}},
  "data":{"namespace":"shop","name":"web","url":"http://web.shop.svc:8080"}}}`
)

func event(reason, note string) string {
	return `{"verb":"create","apiVersion":"events.k8s.io/v1","kind":"Event","namespace":"shop",
 "body":{"apiVersion":"events.k8s.io/v1","kind":"Event","metadata":{"generateName":"web-","namespace":"shop"},
  "eventTime":"2026-01-02T03:04:05.123456Z","reportingController":"demo.wasm-operator.dev/webapp","reportingInstance":"webapp",
  "action":"Reconcile","reason":"` + reason + `","note":"` + note + `","type":"Normal",
  "regarding":{"apiVersion":"demo.wasm-operator.dev/v1alpha1","kind":"WebApp","namespace":"shop","name":"web","uid":"u-1"}}}`
}

func TestCreatePath(t *testing.T) {
	h := fakeCluster(t, 0)
	mustReconcile(t, request(newWebApp))
	transcript.Expect(t, h.RawKubeRequests,
		`{"verb":"update","apiVersion":"demo.wasm-operator.dev/v1alpha1","kind":"WebApp","namespace":"shop","name":"web",
		  "body":{"apiVersion":"demo.wasm-operator.dev/v1alpha1","kind":"WebApp",
		   "metadata":{"name":"web","namespace":"shop","uid":"u-1","generation":1,"resourceVersion":"100",
		    "creationTimestamp":"2026-01-01T00:00:00Z",
		    "managedFields":[{"manager":"kubectl","operation":"Apply","apiVersion":"demo.wasm-operator.dev/v1alpha1"}],
		    "finalizers":["demo.wasm-operator.dev/registry"]},
		   "spec":{"image":"nginx:1.27","replicas":2,"port":8080}}}`,
		applyDeployment, applyService, applyRegistryEntry,
		`{"verb":"patch","apiVersion":"demo.wasm-operator.dev/v1alpha1","kind":"WebApp","namespace":"shop","name":"web",
		  "subresource":"status","patchType":"merge",
		  "body":{"status":{"observedGeneration":1,"readyReplicas":0,"conditions":[{"type":"Ready","status":"False",
		   "reason":"DeploymentNotReady","message":"0/2 replicas ready","observedGeneration":1,"lastTransitionTime":"2026-01-02T03:04:05Z"}]}}}`,
		event("DeploymentNotReady", "0/2 replicas ready"))
}

// A reconciled WebApp whose Deployment is not ready yet, as the API server holds it after the
// create path.
const notReadyWebApp = `{"apiVersion":"demo.wasm-operator.dev/v1alpha1","kind":"WebApp",
 "metadata":{"name":"web","namespace":"shop","uid":"u-1","generation":1,"resourceVersion":"104",
  "finalizers":["demo.wasm-operator.dev/registry"]},
 "spec":{"image":"nginx:1.27","replicas":2,"port":8080},
 "status":{"observedGeneration":1,"readyReplicas":0,"conditions":[{"type":"Ready","status":"False",
  "reason":"DeploymentNotReady","message":"0/2 replicas ready","observedGeneration":1,"lastTransitionTime":"2025-12-31T00:00:00Z"}]}}`

func TestNothingChangedWritesNoStatus(t *testing.T) {
	h := fakeCluster(t, 0)
	mustReconcile(t, request(notReadyWebApp))
	transcript.Expect(t, h.RawKubeRequests, applyDeployment, applyService, applyRegistryEntry)
}

func TestProgressKeepsTheTransitionTime(t *testing.T) {
	h := fakeCluster(t, 1)
	mustReconcile(t, request(notReadyWebApp))
	transcript.Expect(t, h.RawKubeRequests, applyDeployment, applyService, applyRegistryEntry,
		`{"verb":"patch","apiVersion":"demo.wasm-operator.dev/v1alpha1","kind":"WebApp","namespace":"shop","name":"web",
		  "subresource":"status","patchType":"merge",
		  "body":{"status":{"observedGeneration":1,"readyReplicas":1,"conditions":[{"type":"Ready","status":"False",
		   "reason":"DeploymentNotReady","message":"1/2 replicas ready","observedGeneration":1,"lastTransitionTime":"2025-12-31T00:00:00Z"}]}}}`)
}

func TestBecomingReadyIsAnEvent(t *testing.T) {
	h := fakeCluster(t, 2)
	mustReconcile(t, request(notReadyWebApp))
	transcript.Expect(t, h.RawKubeRequests, applyDeployment, applyService, applyRegistryEntry,
		`{"verb":"patch","apiVersion":"demo.wasm-operator.dev/v1alpha1","kind":"WebApp","namespace":"shop","name":"web",
		  "subresource":"status","patchType":"merge",
		  "body":{"status":{"observedGeneration":1,"readyReplicas":2,"conditions":[{"type":"Ready","status":"True",
		   "reason":"DeploymentReady","message":"2/2 replicas ready","observedGeneration":1,"lastTransitionTime":"2026-01-02T03:04:05Z"}]}}}`,
		event("DeploymentReady", "2/2 replicas ready"))
}

// A WebApp being deleted, with a finalizer of someone else's on either side of ours.
const deletedWebApp = `{"apiVersion":"demo.wasm-operator.dev/v1alpha1","kind":"WebApp",
 "metadata":{"name":"web","namespace":"shop","uid":"u-1","generation":2,"resourceVersion":"120",
  "deletionTimestamp":"2026-01-02T03:00:00Z","deletionGracePeriodSeconds":0,
  "finalizers":["example.com/first","demo.wasm-operator.dev/registry","example.com/last"]},
 "spec":{"image":"nginx:1.27","replicas":2,"port":8080},
 "status":{"observedGeneration":1,"readyReplicas":2}}`

func TestDeletionRemovesTheEntryThenTheFinalizer(t *testing.T) {
	for _, entryExists := range []bool{true, false} {
		h := fakeCluster(t, 0)
		h.OnKube = func(req abi.KubeRequest) abi.HostResponse {
			if req.Verb == abi.VerbDelete && !entryExists {
				return fakehost.NotFound("configmaps", req.Name) // already gone: fine
			}
			return fakehost.OK(`{"kind":"Status","apiVersion":"v1","status":"Success"}`)
		}
		mustReconcile(t, request(deletedWebApp))
		transcript.Expect(t, h.RawKubeRequests,
			`{"verb":"delete","apiVersion":"v1","kind":"ConfigMap","namespace":"registry","name":"webapp-shop-web"}`,
			`{"verb":"update","apiVersion":"demo.wasm-operator.dev/v1alpha1","kind":"WebApp","namespace":"shop","name":"web",
			  "body":{"apiVersion":"demo.wasm-operator.dev/v1alpha1","kind":"WebApp",
			   "metadata":{"name":"web","namespace":"shop","uid":"u-1","generation":2,"resourceVersion":"120",
			    "deletionTimestamp":"2026-01-02T03:00:00Z","deletionGracePeriodSeconds":0,
			    "finalizers":["example.com/first","example.com/last"]},
			   "spec":{"image":"nginx:1.27","replicas":2,"port":8080},
			   "status":{"observedGeneration":1,"readyReplicas":2}}}`)
	}
}

func TestLastFinalizerRemovedLeavesAnEmptyList(t *testing.T) {
	h := fakeCluster(t, 0)
	only := strings.Replace(deletedWebApp, `"example.com/first","demo.wasm-operator.dev/registry","example.com/last"`,
		`"demo.wasm-operator.dev/registry"`, 1)
	mustReconcile(t, request(only))
	if len(h.KubeRequests) != 2 || !strings.Contains(string(h.KubeRequests[1].Body), `"finalizers":[]`) {
		t.Fatalf("requests %d, update body %s", len(h.KubeRequests), h.KubeRequests[len(h.KubeRequests)-1].Body)
	}
}

func TestDeletionWithoutOurFinalizerDoesNothing(t *testing.T) {
	h := fakeCluster(t, 0)
	mustReconcile(t, request(strings.Replace(deletedWebApp, `"demo.wasm-operator.dev/registry",`, "", 1)))
	transcript.Expect(t, h.RawKubeRequests)
}

func TestFailedDeletionKeepsTheFinalizer(t *testing.T) {
	h := fakeCluster(t, 0)
	h.OnKube = func(abi.KubeRequest) abi.HostResponse {
		return fakehost.APIError(403, "Forbidden", `configmaps "webapp-shop-web" is forbidden`)
	}
	if _, err := newReconciler().Reconcile(context.Background(), request(deletedWebApp)); err == nil ||
		!strings.Contains(err.Error(), "forbidden") {
		t.Fatalf("error %v", err)
	}
	if len(h.KubeRequests) != 1 {
		t.Fatalf("the finalizer must stay until the entry is gone; requests: %d", len(h.KubeRequests))
	}
}

func TestFailedApplyStopsTheReconcile(t *testing.T) {
	h := fakeCluster(t, 0)
	h.OnKube = func(req abi.KubeRequest) abi.HostResponse {
		if req.Kind == "Service" {
			return fakehost.APIError(422, "Invalid", `Service "web" is invalid`)
		}
		return fakehost.OK(req.Body)
	}
	_, err := newReconciler().Reconcile(context.Background(), request(notReadyWebApp))
	if err == nil || !strings.Contains(err.Error(), "applying Service shop/web") {
		t.Fatalf("error %v", err)
	}
	transcript.Expect(t, h.RawKubeRequests, applyDeployment, applyService)
}

func TestDefaultsOfTheCRD(t *testing.T) {
	h := fakeCluster(t, 1)
	bare := strings.Replace(notReadyWebApp, `"replicas":2,"port":8080`, `"replicas":null`, 1)
	mustReconcile(t, request(bare))
	apply := string(h.KubeRequests[0].Body)
	for _, part := range []string{`"replicas":1`, `"containerPort":8080`} {
		if !strings.Contains(apply, part) {
			t.Errorf("deployment lacks %s: %s", part, apply)
		}
	}
	if status := string(h.KubeRequests[3].Body); !strings.Contains(status, `"message":"1/1 replicas ready"`) {
		t.Errorf("status %s", status)
	}
}

// The module as the host drives it: registration, configuration, and the request conventions.
func TestThroughTheExports(t *testing.T) {
	h := fakeCluster(t, 0)
	h.Config = json.RawMessage(`{"registryNamespace":"central"}`)
	if code := h.Init(); code != abi.ReturnOK {
		t.Fatalf("init: %d %s", code, h.Result())
	}
	transcript.Expect(t, [][]byte{h.Result()}, `{
	  "for":{"apiVersion":"demo.wasm-operator.dev/v1alpha1","kind":"WebApp","predicates":["generationChanged"]},
	  "owns":[{"apiVersion":"apps/v1","kind":"Deployment","predicates":[]},{"apiVersion":"v1","kind":"Service","predicates":[]}],
	  "watches":[]}`)

	wire := abi.ReconcileRequest{APIVersion: "demo.wasm-operator.dev/v1alpha1", Kind: "WebApp", Namespace: "shop", Name: "web"}
	if code := h.Reconcile(wire); code != abi.ReturnOK || string(h.Result()) != `{}` || len(h.KubeRequests) != 0 {
		t.Fatalf("a vanished object: code %d, result %s, %d requests", code, h.Result(), len(h.KubeRequests))
	}

	wire.Object = json.RawMessage(notReadyWebApp)
	if code := h.Reconcile(wire); code != abi.ReturnOK || string(h.Result()) != `{}` {
		t.Fatalf("reconcile: code %d, result %s", code, h.Result())
	}
	if entry := h.KubeRequests[2]; entry.Kind != "ConfigMap" || entry.Namespace != "central" {
		t.Fatalf("the registry entry must go to the configured namespace: %+v", entry)
	}

	h.Config = nil
	if code := h.Init(); code != abi.ReturnOK {
		t.Fatalf("init without config: %d %s", code, h.Result())
	}
	h.KubeRequests = nil
	h.Reconcile(wire)
	if entry := h.KubeRequests[2]; entry.Namespace != "default" {
		t.Fatalf("the registry namespace defaults to default: %+v", entry)
	}
}

// WebApps of the same name in different namespaces share the registry namespace, so their entries
// must be named apart.
func TestRegistryEntryNamesDoNotCollide(t *testing.T) {
	a := desiredRegistryEntry(&WebApp{ObjectMeta: types.ObjectMeta{Name: "web", Namespace: "a"}}, "r")
	b := desiredRegistryEntry(&WebApp{ObjectMeta: types.ObjectMeta{Name: "web", Namespace: "b"}}, "r")
	if a.Name == b.Name {
		t.Fatalf("both entries are named %s", a.Name)
	}
}
