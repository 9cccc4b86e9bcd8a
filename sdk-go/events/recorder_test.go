// Event objects as created, and repeats folded into a series.

package events

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"wasm-operator.dev/sdk-go/abi"
	"wasm-operator.dev/sdk-go/client"
	"wasm-operator.dev/sdk-go/fakehost"
	"wasm-operator.dev/sdk-go/types"
)

func setup(t *testing.T) (*fakehost.Host, *Recorder, *time.Time) {
	t.Helper()
	h := fakehost.New()
	h.OnKube = func(req abi.KubeRequest) abi.HostResponse { return fakehost.OK(req.Body) }
	h.OperatorName = "webapp"
	t.Cleanup(h.Install())
	clock := time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.UTC)
	r := NewRecorder(client.New())
	r.now = func() time.Time { return clock }
	return h, r, &clock
}

func webApp() *types.Unstructured {
	o := types.NewUnstructured("demo.wasm-operator.dev/v1alpha1", "WebApp")
	o.Name, o.Namespace, o.UID, o.ResourceVersion = "web", "ns", "uid-1", "5"
	return o
}

func TestEventfCreatesAnEventsV1Event(t *testing.T) {
	h, r, clock := setup(t)
	r.Eventf(webApp(), nil, types.EventTypeNormal, "Scaled", "Scale", "scaled to %d replicas", 3)
	if len(h.KubeRequests) != 1 {
		t.Fatalf("requests: %d", len(h.KubeRequests))
	}
	req := h.KubeRequests[0]
	if req.Verb != "create" || req.APIVersion != "events.k8s.io/v1" || req.Kind != "Event" || req.Namespace != "ns" {
		t.Fatalf("request %+v", req)
	}
	var body map[string]any
	if err := json.Unmarshal(req.Body, &body); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"apiVersion": "events.k8s.io/v1", "kind": "Event",
		"eventTime": "2025-03-04T05:06:07.123456Z", "reportingController": "wasm-operator.dev/webapp",
		"reportingInstance": "webapp", "action": "Scale", "reason": "Scaled", "note": "scaled to 3 replicas", "type": "Normal",
	}
	for k, v := range want {
		if body[k] != v {
			t.Errorf("%s = %v, want %v", k, body[k], v)
		}
	}
	meta := body["metadata"].(map[string]any)
	if meta["namespace"] != "ns" || meta["name"] != "web."+hex(clock.UnixNano()) {
		t.Errorf("metadata %v", meta)
	}
	regarding := body["regarding"].(map[string]any)
	if regarding["kind"] != "WebApp" || regarding["uid"] != "uid-1" || regarding["apiVersion"] != "demo.wasm-operator.dev/v1alpha1" {
		t.Errorf("regarding %v", regarding)
	}
	if _, hasRelated := body["related"]; hasRelated {
		t.Error("related set without a related object")
	}
}

func TestRepeatsBecomeASeries(t *testing.T) {
	h, r, clock := setup(t)
	r.Event(webApp(), types.EventTypeWarning, "Failed", "Deploy", "image missing")
	*clock = clock.Add(time.Minute)
	r.Event(webApp(), types.EventTypeWarning, "Failed", "Deploy", "image missing")
	if len(h.KubeRequests) != 2 {
		t.Fatalf("requests: %d", len(h.KubeRequests))
	}
	patch := h.KubeRequests[1]
	if patch.Verb != "patch" || patch.PatchType != "merge" || patch.Name != firstEventName(t, h) {
		t.Fatalf("second event should patch the first: %+v", patch)
	}
	if got, want := string(patch.Body), `{"series":{"count":2,"lastObservedTime":"2025-03-04T05:07:07.123456Z"}}`; got != want {
		t.Fatalf("series patch\n got  %s\n want %s", got, want)
	}
	// A different note is a different event; a repeat after the window starts a new one.
	r.Event(webApp(), types.EventTypeWarning, "Failed", "Deploy", "other")
	*clock = clock.Add(11 * time.Minute)
	r.Event(webApp(), types.EventTypeWarning, "Failed", "Deploy", "image missing")
	if h.KubeRequests[2].Verb != "create" || h.KubeRequests[3].Verb != "create" {
		t.Fatalf("verbs: %s, %s", h.KubeRequests[2].Verb, h.KubeRequests[3].Verb)
	}
}

func TestSeriesOfADeletedEventStartsOver(t *testing.T) {
	h, r, clock := setup(t)
	r.Event(webApp(), types.EventTypeNormal, "Synced", "Sync", "ok")
	h.OnKube = func(req abi.KubeRequest) abi.HostResponse {
		if req.Verb == "patch" {
			return fakehost.NotFound("events.events.k8s.io", req.Name)
		}
		return fakehost.OK(req.Body)
	}
	*clock = clock.Add(time.Second)
	r.Event(webApp(), types.EventTypeNormal, "Synced", "Sync", "ok")
	if n := len(h.KubeRequests); n != 3 || h.KubeRequests[2].Verb != "create" {
		t.Fatalf("expected create, patch (404), create; got %d requests", n)
	}
}

func TestFailuresAreLoggedNotReturned(t *testing.T) {
	h, r, _ := setup(t)
	h.OnKube = func(abi.KubeRequest) abi.HostResponse {
		return fakehost.APIError(403, "Forbidden", "events is forbidden")
	}
	r.Event(webApp(), types.EventTypeNormal, "Synced", "Sync", "ok")
	if len(h.Logs) != 1 || h.Logs[0].Level != "warn" || h.Logs[0].Fields["error"] != "events is forbidden" {
		t.Fatalf("logs %+v", h.Logs)
	}
}

func TestClusterScopedObjectsGetEventsInDefault(t *testing.T) {
	h, r, _ := setup(t)
	node := types.NewUnstructured("v1", "Node")
	node.Name = "n1"
	r.Event(node, types.EventTypeNormal, "Seen", "Observe", "hello")
	if h.KubeRequests[0].Namespace != "default" {
		t.Fatalf("namespace %q", h.KubeRequests[0].Namespace)
	}
}

func hex(n int64) string { return strconv.FormatInt(n, 16) }

// firstEventName is the name the first create request gave its Event.
func firstEventName(t *testing.T, h *fakehost.Host) string {
	t.Helper()
	var body struct {
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(h.KubeRequests[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	return body.Metadata.Name
}
