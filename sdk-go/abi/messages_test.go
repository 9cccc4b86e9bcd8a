// The exact bytes of every message this SDK writes.

package abi_test

import (
	"encoding/json"
	"testing"

	"wasm-operator.dev/sdk-go/abi"
)

func marshal(t *testing.T, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal %T: %v", v, err)
	}
	return string(data)
}

func TestKubeRequestSendsExactlyTheFieldsOfItsVerb(t *testing.T) {
	body := json.RawMessage(`{"a":1}`)
	cases := []struct {
		name string
		req  abi.KubeRequest
		want string
	}{
		{"get", abi.KubeRequest{Verb: "get", APIVersion: "v1", Kind: "ConfigMap", Namespace: "ns", Name: "x", LabelSelector: "ignored"},
			`{"verb":"get","apiVersion":"v1","kind":"ConfigMap","namespace":"ns","name":"x"}`},
		{"get cached cluster-scoped", abi.KubeRequest{Verb: "get", APIVersion: "v1", Kind: "Namespace", Name: "x", Cached: true},
			`{"verb":"get","apiVersion":"v1","kind":"Namespace","name":"x","cached":true}`},
		{"list", abi.KubeRequest{Verb: "list", APIVersion: "v1", Kind: "ConfigMap", Namespace: "ns", LabelSelector: "a=b", Name: "ignored"},
			`{"verb":"list","apiVersion":"v1","kind":"ConfigMap","namespace":"ns","labelSelector":"a=b"}`},
		{"create", abi.KubeRequest{Verb: "create", APIVersion: "v1", Kind: "ConfigMap", Namespace: "ns", Body: body},
			`{"verb":"create","apiVersion":"v1","kind":"ConfigMap","namespace":"ns","body":{"a":1}}`},
		{"update", abi.KubeRequest{Verb: "update", APIVersion: "v1", Kind: "ConfigMap", Namespace: "ns", Name: "x", Body: body},
			`{"verb":"update","apiVersion":"v1","kind":"ConfigMap","namespace":"ns","name":"x","body":{"a":1}}`},
		{"update status", abi.KubeRequest{Verb: "update", APIVersion: "v1", Kind: "ConfigMap", Namespace: "ns", Name: "x", Subresource: "status", Body: body},
			`{"verb":"update","apiVersion":"v1","kind":"ConfigMap","namespace":"ns","name":"x","subresource":"status","body":{"a":1}}`},
		{"patch apply", abi.KubeRequest{Verb: "patch", APIVersion: "v1", Kind: "ConfigMap", Namespace: "ns", Name: "x", PatchType: "apply", FieldManager: "webapp", Force: true, Body: body},
			`{"verb":"patch","apiVersion":"v1","kind":"ConfigMap","namespace":"ns","name":"x","patchType":"apply","fieldManager":"webapp","force":true,"body":{"a":1}}`},
		{"patch merge without options", abi.KubeRequest{Verb: "patch", APIVersion: "v1", Kind: "ConfigMap", Namespace: "ns", Name: "x", Subresource: "status", PatchType: "merge", Body: body},
			`{"verb":"patch","apiVersion":"v1","kind":"ConfigMap","namespace":"ns","name":"x","subresource":"status","patchType":"merge","body":{"a":1}}`},
		{"delete without policy", abi.KubeRequest{Verb: "delete", APIVersion: "v1", Kind: "ConfigMap", Namespace: "ns", Name: "x"},
			`{"verb":"delete","apiVersion":"v1","kind":"ConfigMap","namespace":"ns","name":"x"}`},
		{"delete", abi.KubeRequest{Verb: "delete", APIVersion: "v1", Kind: "ConfigMap", Namespace: "ns", Name: "x", PropagationPolicy: "Foreground"},
			`{"verb":"delete","apiVersion":"v1","kind":"ConfigMap","namespace":"ns","name":"x","propagationPolicy":"Foreground"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := marshal(t, c.req)
			if got != c.want {
				t.Fatalf("got  %s\nwant %s", got, c.want)
			}
			var back abi.KubeRequest
			if err := json.Unmarshal([]byte(got), &back); err != nil {
				t.Fatal(err)
			}
			if marshal(t, back) != c.want {
				t.Fatalf("round trip changed the request: %s", marshal(t, back))
			}
		})
	}
}

// absentReason travels only when set, and comes back as sent.
func TestReconcileRequestAbsentReason(t *testing.T) {
	for _, c := range []struct {
		req  abi.ReconcileRequest
		want string
	}{
		{abi.ReconcileRequest{APIVersion: "v1", Kind: "ConfigMap", Namespace: "ns", Name: "x", AbsentReason: abi.AbsentNotSelected},
			`{"apiVersion":"v1","kind":"ConfigMap","namespace":"ns","name":"x","object":null,"attempt":0,"absentReason":"notSelected"}`},
		{abi.ReconcileRequest{APIVersion: "v1", Kind: "ConfigMap", Namespace: "ns", Name: "x", Object: json.RawMessage(`{"a":1}`)},
			`{"apiVersion":"v1","kind":"ConfigMap","namespace":"ns","name":"x","object":{"a":1},"attempt":0}`},
	} {
		if got := marshal(t, c.req); got != c.want {
			t.Fatalf("got  %s\nwant %s", got, c.want)
		}
		var back abi.ReconcileRequest
		if err := json.Unmarshal([]byte(c.want), &back); err != nil || back.AbsentReason != c.req.AbsentReason {
			t.Fatalf("decoded %+v, %v", back, err)
		}
	}
}

func TestKubeRequestRejectsUnknownVerb(t *testing.T) {
	if _, err := json.Marshal(abi.KubeRequest{Verb: "watch"}); err == nil {
		t.Fatal("a watch verb marshalled; the ABI has no such request")
	}
}

func TestRegistrationMatchesTheSpecExample(t *testing.T) {
	selector, namespaceLabel := "app=x", "ns-label"
	reg := abi.Registration{
		For: abi.WatchSpec{APIVersion: "demo.wasm-operator.dev/v1alpha1", Kind: "WebApp",
			Predicates: []abi.Predicate{abi.GenerationChanged}},
		Owns: []abi.WatchSpec{{APIVersion: "apps/v1", Kind: "Deployment"}},
		Watches: []abi.Watch{
			{WatchSpec: abi.WatchSpec{APIVersion: "v1", Kind: "ConfigMap", LabelSelector: &selector},
				Mapping: abi.Mapping{Type: abi.MappingLabels, NameLabel: "demo.wasm-operator.dev/webapp"}},
			{WatchSpec: abi.WatchSpec{APIVersion: "v1", Kind: "Secret"}, Mapping: abi.Mapping{Type: abi.MappingOwner}},
			{WatchSpec: abi.WatchSpec{APIVersion: "v1", Kind: "Node"},
				Mapping: abi.Mapping{Type: abi.MappingLabels, NameLabel: "n", NamespaceLabel: &namespaceLabel}},
		},
	}
	want := `{"for":{"apiVersion":"demo.wasm-operator.dev/v1alpha1","kind":"WebApp","predicates":["generationChanged"]},` +
		`"owns":[{"apiVersion":"apps/v1","kind":"Deployment","predicates":[]}],` +
		`"watches":[{"apiVersion":"v1","kind":"ConfigMap","labelSelector":"app=x","predicates":[],"mapping":{"type":"labels","nameLabel":"demo.wasm-operator.dev/webapp"}},` +
		`{"apiVersion":"v1","kind":"Secret","predicates":[],"mapping":{"type":"owner"}},` +
		`{"apiVersion":"v1","kind":"Node","predicates":[],"mapping":{"type":"labels","nameLabel":"n","namespaceLabel":"ns-label"}}]}`
	got := marshal(t, reg)
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	var back abi.Registration
	if err := json.Unmarshal([]byte(got), &back); err != nil {
		t.Fatal(err)
	}
	if marshal(t, back) != want {
		t.Fatalf("round trip changed the registration: %s", marshal(t, back))
	}
}

func TestEmptyRegistrationListsAreArrays(t *testing.T) {
	got := marshal(t, abi.Registration{For: abi.WatchSpec{APIVersion: "v1", Kind: "ConfigMap"}})
	want := `{"for":{"apiVersion":"v1","kind":"ConfigMap","predicates":[]},"owns":[],"watches":[]}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestResultsAndErrors(t *testing.T) {
	ms := uint64(30000)
	if got := marshal(t, abi.ReconcileResult{RequeueAfterMs: &ms}); got != `{"requeueAfterMs":30000}` {
		t.Errorf("requeueAfter result: %s", got)
	}
	if got := marshal(t, abi.ReconcileResult{}); got != `{}` {
		t.Errorf("empty result: %s", got)
	}
	if got := marshal(t, abi.ReconcileResult{Requeue: true}); got != `{"requeue":true}` {
		t.Errorf("requeue result: %s", got)
	}
	if got := marshal(t, abi.GuestError{Message: "boom"}); got != `{"message":"boom"}` {
		t.Errorf("guest error: %s", got)
	}
}

func TestHostResponseDecodesTheSpecExamples(t *testing.T) {
	var resp abi.HostResponse
	notFound := `{"error":{"type":"apiStatus","message":"configmaps \"x\" not found","status":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"configmaps \"x\" not found","reason":"NotFound","details":{"name":"x","kind":"configmaps"},"code":404}}}`
	if err := json.Unmarshal([]byte(notFound), &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Error == nil || resp.Error.Status == nil || resp.Error.Status.Code != 404 || resp.Error.Status.Details.Name != "x" {
		t.Fatalf("decoded %+v", resp.Error)
	}
	limit := `{"error":{"type":"limitExceeded","message":"response body exceeds 4194304 bytes","limit":"responseSize"}}`
	resp = abi.HostResponse{}
	if err := json.Unmarshal([]byte(limit), &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Error.Type != abi.ErrorLimitExceeded || resp.Error.Limit != "responseSize" {
		t.Fatalf("decoded %+v", resp.Error)
	}
}

// docs/abi.md: writers omit optional fields that are unset, rather than sending null.
func TestRequestsWithoutOptionalFields(t *testing.T) {
	got := marshal(t, abi.HTTPRequest{Method: "GET", URL: "http://x/", Headers: map[string]string{}})
	if got != `{"method":"GET","url":"http://x/"}` {
		t.Errorf("http request: %s", got)
	}
	got = marshal(t, abi.LogRecord{Level: "info", Message: "hi"})
	if got != `{"level":"info","message":"hi"}` {
		t.Errorf("log record: %s", got)
	}
}
