// The exact Event each call creates, and that repeats are new Events, not a series.

package events_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"wasm-operator.dev/sdk-go/abi"
	"wasm-operator.dev/sdk-go/client"
	"wasm-operator.dev/sdk-go/events"
	"wasm-operator.dev/sdk-go/fakehost"
	"wasm-operator.dev/sdk-go/types"
)

var clock = time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.UTC)

func setup(t *testing.T) *fakehost.Host {
	t.Helper()
	h := fakehost.New()
	h.OnKube = func(req abi.KubeRequest) abi.HostResponse { return fakehost.OK(req.Body) }
	h.OperatorName = "webapp-7"
	t.Cleanup(h.Install())
	return h
}

func webApp() *types.Unstructured {
	o := types.NewUnstructured("demo.wasm-operator.dev/v1alpha1", "WebApp")
	o.Name, o.Namespace, o.UID, o.ResourceVersion = "web", "ns", "uid-1", "5"
	return o
}

func fixedClock() time.Time { return clock }

func TestEventCreatesExactlyTheSpecEvent(t *testing.T) {
	h := setup(t)
	r := events.NewRecorder(client.New(), events.ReportingController("demo.wasm-operator.dev/webapp"),
		events.ReportingInstance("webapp"), events.WithClock(fixedClock))
	r.Eventf(webApp(), nil, types.EventTypeNormal, "DeploymentReady", "Reconcile", "%d/%d replicas ready", 3, 3)
	if len(h.RawKubeRequests) != 1 {
		t.Fatalf("requests: %d", len(h.RawKubeRequests))
	}
	want := `{"verb":"create","apiVersion":"events.k8s.io/v1","kind":"Event","namespace":"ns","body":{` +
		`"apiVersion":"events.k8s.io/v1","kind":"Event","metadata":{"generateName":"web-","namespace":"ns"},` +
		`"eventTime":"2025-03-04T05:06:07.123456Z","reportingController":"demo.wasm-operator.dev/webapp","reportingInstance":"webapp",` +
		`"action":"Reconcile","reason":"DeploymentReady",` +
		`"regarding":{"apiVersion":"demo.wasm-operator.dev/v1alpha1","kind":"WebApp","namespace":"ns","name":"web","uid":"uid-1"},` +
		`"note":"3/3 replicas ready","type":"Normal"}}`
	if got := string(h.RawKubeRequests[0]); got != want {
		t.Fatalf("request\n got  %s\n want %s", got, want)
	}
}

func TestDefaultsNameTheOperator(t *testing.T) {
	h := setup(t)
	events.NewRecorder(client.New()).Event(webApp(), types.EventTypeWarning, "Failed", "Deploy", "image missing")
	var body types.Event
	if err := json.Unmarshal(h.KubeRequests[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	if body.ReportingController != "wasm-operator.dev/webapp-7" || body.ReportingInstance != "webapp-7" {
		t.Fatalf("reporting %q %q", body.ReportingController, body.ReportingInstance)
	}
	if body.EventTime.IsZero() {
		t.Fatal("eventTime not set")
	}
}

func TestRepeatsAreSeparateCreates(t *testing.T) {
	h := setup(t)
	r := events.NewRecorder(client.New(), events.WithClock(fixedClock))
	for i := 0; i < 3; i++ {
		r.Event(webApp(), types.EventTypeWarning, "Failed", "Deploy", "image missing")
	}
	if len(h.KubeRequests) != 3 {
		t.Fatalf("requests: %d", len(h.KubeRequests))
	}
	for i, req := range h.KubeRequests {
		if req.Verb != abi.VerbCreate || string(req.Body) != string(h.KubeRequests[0].Body) {
			t.Fatalf("request %d: %s %s", i, req.Verb, req.Body)
		}
	}
}

func TestRelatedObjectIsReferenced(t *testing.T) {
	h := setup(t)
	related := &types.Deployment{ObjectMeta: types.ObjectMeta{Name: "web", Namespace: "ns", UID: "d-1", ResourceVersion: "9"}}
	events.NewRecorder(client.New()).Eventf(webApp(), related, types.EventTypeNormal, "Applied", "Apply", "applied")
	var body types.Event
	if err := json.Unmarshal(h.KubeRequests[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	want := types.ObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "ns", Name: "web", UID: "d-1"}
	if body.Related == nil || *body.Related != want {
		t.Fatalf("related %+v", body.Related)
	}
}

func TestLongNotesAreCut(t *testing.T) {
	h := setup(t)
	long := make([]byte, 2000)
	for i := range long {
		long[i] = 'x'
	}
	events.NewRecorder(client.New()).Event(webApp(), types.EventTypeNormal, "Big", "Reconcile", string(long))
	var body types.Event
	if err := json.Unmarshal(h.KubeRequests[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	if len(body.Note) != 1024 || body.Note[1021:] != "..." {
		t.Fatalf("note of %d bytes ending %q", len(body.Note), body.Note[len(body.Note)-3:])
	}
}

// A note is cut on a character boundary: a cut inside a multi-byte character would leave a stray
// byte that JSON turns into U+FFFD, making the note invalid and longer than the API server allows.
func TestLongMultiByteNotesAreCutOnACharacterBoundary(t *testing.T) {
	notes := map[string]string{
		"1023 ASCII bytes and an é":        strings.Repeat("x", 1023) + "é",
		"an é across the cut":              strings.Repeat("x", 1020) + "é" + strings.Repeat("x", 10),
		"3- and 4-byte characters":         strings.Repeat("€😀", 200),
		"4-byte characters across the cut": "xx" + strings.Repeat("😀", 400),
		"invalid UTF-8 near the limit":     strings.Repeat("x", 1000) + strings.Repeat("\xffx", 30),
	}
	for name, note := range notes {
		t.Run(name, func(t *testing.T) {
			h := setup(t)
			events.NewRecorder(client.New()).Event(webApp(), types.EventTypeNormal, "Big", "Reconcile", note)
			// What the API server receives is the request's JSON, so check the note as decoded from it.
			var body types.Event
			if err := json.Unmarshal(h.KubeRequests[0].Body, &body); err != nil {
				t.Fatal(err)
			}
			if !utf8.ValidString(body.Note) || len(body.Note) > 1024 || !strings.HasSuffix(body.Note, "...") {
				t.Fatalf("note of %d bytes, valid UTF-8 %v, ending %q", len(body.Note), utf8.ValidString(body.Note), body.Note[len(body.Note)-8:])
			}
			if len(body.Note) < 1024-3-3 { // at most one 4-byte character is dropped besides the "..."
				t.Fatalf("note cut more than needed: %d bytes", len(body.Note))
			}
		})
	}
}

func TestFailuresAreLoggedNotReturned(t *testing.T) {
	h := setup(t)
	h.OnKube = func(abi.KubeRequest) abi.HostResponse {
		return fakehost.APIError(403, "Forbidden", "events is forbidden")
	}
	events.NewRecorder(client.New()).Event(webApp(), types.EventTypeNormal, "Synced", "Sync", "ok")
	if len(h.Logs) != 1 || h.Logs[0].Level != "warn" || h.Logs[0].Fields["error"] != "events is forbidden" {
		t.Fatalf("logs %+v", h.Logs)
	}
}

func TestClusterScopedObjectsGetEventsInDefault(t *testing.T) {
	h := setup(t)
	node := types.NewUnstructured("v1", "Node")
	node.Name = "n1"
	events.NewRecorder(client.New()).Event(node, types.EventTypeNormal, "Seen", "Observe", "hello")
	if h.KubeRequests[0].Namespace != "default" {
		t.Fatalf("namespace %q", h.KubeRequests[0].Namespace)
	}
}
