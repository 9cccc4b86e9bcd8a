// The metrics-scaler operator against a fake host: the exact HTTP and Kubernetes requests of
// docs/examples.md, in order, for a scale-up, an unavailable metric and the cases in between.

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
)

var now = time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)

// scaler is a MetricScaler as the API server holds it (CRD defaults applied), never reconciled.
const scaler = `{"apiVersion":"demo.wasm-operator.dev/v1alpha1","kind":"MetricScaler",
 "metadata":{"name":"web-scaler","namespace":"shop","uid":"s-1","generation":1,"resourceVersion":"10"},
 "spec":{"targetRef":{"apiVersion":"apps/v1","kind":"Deployment","name":"web"},
  "metricsUrl":"http://prometheus.monitoring:9090/","query":"sum(rate(http_requests_total{job=\"web\"}[1m]))",
  "targetValue":100,"minReplicas":1,"maxReplicas":10,"intervalSeconds":30}}`

// The HTTP request every reconcile of that scaler starts with.
const metricQuery = `{"method":"GET",
 "url":"http://prometheus.monitoring:9090/api/v1/query?query=sum%28rate%28http_requests_total%7Bjob%3D%22web%22%7D%5B1m%5D%29%29",
 "headers":{"accept":"application/json"},"timeoutMs":5000}`

const getTarget = `{"verb":"get","apiVersion":"apps/v1","kind":"Deployment","namespace":"shop","name":"web"}`

func vector(value string) string {
	return `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1767323045.1,"` + value + `"]}]}}`
}

func deployment(replicas int) string {
	d, _ := json.Marshal(map[string]any{"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "web", "namespace": "shop", "uid": "d-1"}, "spec": map[string]any{"replicas": replicas}})
	return string(d)
}

// fakeHost answers the metric query with metric and reads of the target with target (a
// Deployment's JSON, or "" for a 404); writes come back as sent.
func fakeHost(t *testing.T, metric abi.HostResponse, target string) *fakehost.Host {
	t.Helper()
	h := fakehost.New()
	t.Cleanup(h.Install())
	h.OnHTTP = func(abi.HTTPRequest) abi.HostResponse { return metric }
	h.OnKube = func(req abi.KubeRequest) abi.HostResponse {
		if req.Verb == abi.VerbGet {
			if target == "" {
				return fakehost.NotFound("deployments.apps", req.Name)
			}
			return fakehost.OK(target)
		}
		return fakehost.OK(req.Body)
	}
	return h
}

func reconcileScaler(t *testing.T, object string) reconcile.Result {
	t.Helper()
	c := client.New()
	clock := func() time.Time { return now }
	r := &Reconciler{Client: c, Recorder: conventions.NewRecorder(c, operatorName, clock), Now: clock}
	req := reconcile.Request{APIVersion: "demo.wasm-operator.dev/v1alpha1", Kind: "MetricScaler", Object: json.RawMessage(object)}
	req.Namespace, req.Name = "shop", "web-scaler"
	result, err := r.Reconcile(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return result
}

func statusPatch(status string) string {
	return `{"verb":"patch","apiVersion":"demo.wasm-operator.dev/v1alpha1","kind":"MetricScaler","namespace":"shop",
	 "name":"web-scaler","subresource":"status","patchType":"merge","body":{"status":` + status + `}}`
}

func TestScaleUp(t *testing.T) {
	h := fakeHost(t, fakehost.HTTPOK(200, nil, vector("150")), deployment(2))
	result := reconcileScaler(t, scaler)
	if result.RequeueAfter != 30*time.Second {
		t.Errorf("requeue after %v", result.RequeueAfter)
	}
	transcript.Expect(t, h.RawHTTPRequests, metricQuery)
	transcript.Expect(t, h.RawKubeRequests,
		getTarget,
		`{"verb":"patch","apiVersion":"apps/v1","kind":"Deployment","namespace":"shop","name":"web","patchType":"merge",
		  "body":{"spec":{"replicas":3}}}`,
		`{"verb":"create","apiVersion":"events.k8s.io/v1","kind":"Event","namespace":"shop",
		  "body":{"apiVersion":"events.k8s.io/v1","kind":"Event","metadata":{"generateName":"web-scaler-","namespace":"shop"},
		   "eventTime":"2026-01-02T03:04:05.123456Z","reportingController":"demo.wasm-operator.dev/metrics-scaler",
		   "reportingInstance":"metrics-scaler","action":"Reconcile","reason":"Scaled","type":"Normal",
		   "note":"scaled Deployment web from 2 to 3 replicas (metric value 150)",
		   "regarding":{"apiVersion":"demo.wasm-operator.dev/v1alpha1","kind":"MetricScaler","namespace":"shop","name":"web-scaler","uid":"s-1"}}}`,
		statusPatch(`{"observedGeneration":1,"lastValue":"150","currentReplicas":2,"desiredReplicas":3,
		  "lastScaleTime":"2026-01-02T03:04:05Z","lastError":null,
		  "conditions":[{"type":"Ready","status":"True","reason":"MetricAvailable","message":"metric value 150","lastTransitionTime":"2026-01-02T03:04:05Z"}]}`))
}

// The scaler after TestScaleUp, as the API server would hold it.
const scaledScaler = `{"apiVersion":"demo.wasm-operator.dev/v1alpha1","kind":"MetricScaler",
 "metadata":{"name":"web-scaler","namespace":"shop","uid":"s-1","generation":1,"resourceVersion":"14"},
 "spec":{"targetRef":{"apiVersion":"apps/v1","kind":"Deployment","name":"web"},
  "metricsUrl":"http://prometheus.monitoring:9090/","query":"sum(rate(http_requests_total{job=\"web\"}[1m]))",
  "targetValue":100,"minReplicas":1,"maxReplicas":10,"intervalSeconds":30},
 "status":{"observedGeneration":1,"lastValue":"150","currentReplicas":2,"desiredReplicas":3,"lastScaleTime":"2026-01-01T00:00:00Z",
  "conditions":[{"type":"Ready","status":"True","reason":"MetricAvailable","message":"metric value 150","lastTransitionTime":"2026-01-01T00:00:00Z"}]}}`

func TestUnavailableMetricKeepsTheRestOfTheStatus(t *testing.T) {
	h := fakeHost(t, fakehost.HTTPOK(503, map[string]string{"content-type": "text/plain"}, "overloaded"), deployment(3))
	if result := reconcileScaler(t, scaledScaler); result.RequeueAfter != 30*time.Second {
		t.Errorf("an unavailable metric must still requeue: %v", result.RequeueAfter)
	}
	transcript.Expect(t, h.RawHTTPRequests, metricQuery)
	transcript.Expect(t, h.RawKubeRequests, // no get of the target: the metric decides first
		statusPatch(`{"observedGeneration":1,"lastValue":"150","currentReplicas":2,"desiredReplicas":3,
		  "lastScaleTime":"2026-01-01T00:00:00Z","lastError":"metrics API returned HTTP 503",
		  "conditions":[{"type":"Ready","status":"False","reason":"MetricUnavailable","message":"metrics API returned HTTP 503",
		   "lastTransitionTime":"2026-01-02T03:04:05Z"}]}`))
}

func TestSteadyStateWritesNothing(t *testing.T) {
	h := fakeHost(t, fakehost.HTTPOK(200, nil, vector("150")), deployment(3)) // ceil(3 * 1.5) = 5: scales
	reconcileScaler(t, scaledScaler)
	if len(h.KubeRequests) != 4 {
		t.Fatalf("a changed metric scales: %d requests", len(h.KubeRequests))
	}

	h = fakeHost(t, fakehost.HTTPOK(200, nil, vector("100")), deployment(3)) // ceil(3 * 1.0) = 3
	const settled = `"status":{"observedGeneration":1,"lastValue":"100","currentReplicas":3,"desiredReplicas":3,` +
		`"lastScaleTime":"2026-01-01T00:00:00Z","conditions":[{"type":"Ready","status":"True","reason":"MetricAvailable",` +
		`"message":"metric value 100","lastTransitionTime":"2025-12-01T00:00:00Z"}]}}`
	reconcileScaler(t, scaledScaler[:strings.Index(scaledScaler, `"status":`)]+settled)
	transcript.Expect(t, h.RawKubeRequests, getTarget)
}

func TestHostErrorIsTheLastError(t *testing.T) {
	h := fakeHost(t, fakehost.Error(abi.ErrorTimeout, "http request timed out after 5000 ms"), deployment(2))
	reconcileScaler(t, scaler)
	transcript.Expect(t, h.RawKubeRequests,
		statusPatch(`{"observedGeneration":1,"lastError":"http request timed out after 5000 ms",
		  "conditions":[{"type":"Ready","status":"False","reason":"MetricUnavailable","message":"http request timed out after 5000 ms",
		   "lastTransitionTime":"2026-01-02T03:04:05Z"}]}`))
}

func TestMissingTarget(t *testing.T) {
	h := fakeHost(t, fakehost.HTTPOK(200, nil, vector("150")), "")
	reconcileScaler(t, scaler)
	transcript.Expect(t, h.RawKubeRequests, getTarget,
		statusPatch(`{"observedGeneration":1,"lastError":"target Deployment web not found",
		  "conditions":[{"type":"Ready","status":"False","reason":"MetricUnavailable","message":"target Deployment web not found",
		   "lastTransitionTime":"2026-01-02T03:04:05Z"}]}`))
}

func TestNonPositiveTargetValue(t *testing.T) {
	h := fakeHost(t, fakehost.HTTPOK(200, nil, vector("150")), deployment(2))
	reconcileScaler(t, strings.Replace(scaler, `"targetValue":100`, `"targetValue":0`, 1))
	transcript.Expect(t, h.RawKubeRequests, getTarget,
		statusPatch(`{"observedGeneration":1,"lastError":"targetValue must be positive",
		  "conditions":[{"type":"Ready","status":"False","reason":"MetricUnavailable","message":"targetValue must be positive",
		   "lastTransitionTime":"2026-01-02T03:04:05Z"}]}`))
}

func TestOtherTargetErrorsFailTheReconcile(t *testing.T) {
	h := fakeHost(t, fakehost.HTTPOK(200, nil, vector("150")), deployment(2))
	h.OnKube = func(abi.KubeRequest) abi.HostResponse {
		return fakehost.APIError(403, "Forbidden", "deployments is forbidden")
	}
	c := client.New()
	r := &Reconciler{Client: c, Recorder: conventions.NewRecorder(c, operatorName, time.Now), Now: time.Now}
	req := reconcile.Request{Object: json.RawMessage(scaler)}
	if _, err := r.Reconcile(context.Background(), req); err == nil || !strings.Contains(err.Error(), "forbidden") {
		t.Fatalf("error %v", err)
	}
	if len(h.KubeRequests) != 1 {
		t.Fatalf("nothing may be written after a failed read: %d requests", len(h.KubeRequests))
	}
}

func TestWhichAnswersCarryAValue(t *testing.T) {
	cases := []struct {
		name         string
		status       int
		body         string
		value, error string
	}{
		{"vector", 200, vector("0.25"), "0.25", ""},
		{"scalar", 200, `{"status":"success","data":{"resultType":"scalar","result":[1767323045.1,"42"]}}`, "42", ""},
		{"201 is success", 201, vector("7"), "7", ""},
		{"empty vector", 200, `{"status":"success","data":{"resultType":"vector","result":[]}}`, "", errNoUsableSample},
		{"matrix", 200, `{"status":"success","data":{"resultType":"matrix","result":[]}}`, "", errNoUsableSample},
		{"error status", 200, `{"status":"error","errorType":"bad_data","error":"parse error"}`, "", errNoUsableSample},
		{"not JSON", 200, `<html>`, "", errNoUsableSample},
		{"NaN", 200, vector("NaN"), "", errNoUsableSample},
		{"infinite", 200, vector("+Inf"), "", errNoUsableSample},
		{"hexadecimal", 200, vector("0x10"), "", errNoUsableSample},
		{"number instead of string", 200, `{"status":"success","data":{"resultType":"scalar","result":[1,42]}}`, "", errNoUsableSample},
		{"404", 404, vector("1"), "", "metrics API returned HTTP 404"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := fakeHost(t, fakehost.HTTPOK(c.status, nil, c.body), deployment(1))
			reconcileScaler(t, scaler)
			var patch struct {
				Status MetricScalerStatus `json:"status"`
			}
			if err := json.Unmarshal(h.KubeRequests[len(h.KubeRequests)-1].Body, &patch); err != nil {
				t.Fatal(err)
			}
			gotValue, gotError := "", ""
			if c.error == "" && patch.Status.LastValue != nil {
				gotValue = *patch.Status.LastValue
			}
			if patch.Status.LastError != nil {
				gotError = *patch.Status.LastError
			}
			if gotValue != c.value || gotError != c.error {
				t.Fatalf("value %q error %q, want %q %q", gotValue, gotError, c.value, c.error)
			}
		})
	}
}

func TestDesiredReplicas(t *testing.T) {
	cases := []struct {
		current             int32
		value, targetValue  float64
		minReplicas, maxRep int32
		want                int32
	}{
		{2, 150, 100, 1, 10, 3},
		{0, 150, 100, 1, 10, 2},     // max(current, 1): a scaled-to-zero target can come back
		{4, 10, 100, 2, 10, 2},      // raised to minReplicas
		{4, 1000, 100, 1, 10, 10},   // capped at maxReplicas
		{3, 0.1, 0.3, 1, 10, 2},     // (3 * 0.1) / 0.3 is 1.0000000000000002 in float64; 3 * (0.1 / 0.3) would give 1
		{10, -5, 100, 0, 10, 0},     // a negative metric goes to the floor
		{1, 1e308, 1e-308, 1, 7, 7}, // overflow to +Inf is still capped
		{5, 100, 100, 6, 4, 4},      // crossed bounds: the cap wins
	}
	for _, c := range cases {
		if got := desiredReplicas(c.current, c.value, c.targetValue, c.minReplicas, c.maxRep); got != c.want {
			t.Errorf("desiredReplicas(%d, %v, %v, %d, %d) = %d, want %d", c.current, c.value, c.targetValue, c.minReplicas, c.maxRep, got, c.want)
		}
	}
}

func TestQueryURL(t *testing.T) {
	cases := []struct{ metricsURL, query, want string }{
		{"http://p:9090", "up", "http://p:9090/api/v1/query?query=up"},
		{"http://p:9090/", "up", "http://p:9090/api/v1/query?query=up"},
		{"http://p:9090/prom/", "a b+c/d~e_f.g-h", "http://p:9090/prom/api/v1/query?query=a%20b%2Bc%2Fd~e_f.g-h"},
		{"http://p", "rate(x[5m])>0.5", "http://p/api/v1/query?query=rate%28x%5B5m%5D%29%3E0.5"},
		{"http://p", "é", "http://p/api/v1/query?query=%C3%A9"},
	}
	for _, c := range cases {
		if got := queryURL(c.metricsURL, c.query); got != c.want {
			t.Errorf("queryURL(%q, %q) = %s, want %s", c.metricsURL, c.query, got, c.want)
		}
	}
}

// The module as the host drives it: registration, and intervalSeconds becoming requeueAfterMs.
func TestThroughTheExports(t *testing.T) {
	h := fakeHost(t, fakehost.HTTPOK(200, nil, vector("100")), deployment(1))
	if code := h.Init(); code != abi.ReturnOK {
		t.Fatalf("init: %d %s", code, h.Result())
	}
	transcript.Expect(t, [][]byte{h.Result()}, `{
	  "for":{"apiVersion":"demo.wasm-operator.dev/v1alpha1","kind":"MetricScaler","predicates":["generationChanged"]},
	  "owns":[],"watches":[]}`)

	wire := abi.ReconcileRequest{APIVersion: "demo.wasm-operator.dev/v1alpha1", Kind: "MetricScaler", Namespace: "shop", Name: "web-scaler"}
	if code := h.Reconcile(wire); code != abi.ReturnOK || string(h.Result()) != `{}` || len(h.HTTPRequests) != 0 {
		t.Fatalf("a vanished object: code %d, result %s, %d HTTP requests", code, h.Result(), len(h.HTTPRequests))
	}
	wire.Object = json.RawMessage(strings.Replace(scaler, `"intervalSeconds":30`, `"intervalSeconds":45`, 1))
	if code := h.Reconcile(wire); code != abi.ReturnOK || string(h.Result()) != `{"requeueAfterMs":45000}` {
		t.Fatalf("reconcile: code %d, result %s", code, h.Result())
	}
}
