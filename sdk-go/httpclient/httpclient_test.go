// Outbound HTTP requests, timeouts and error cases.

package httpclient_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"wasm-operator.dev/sdk-go/abi"
	"wasm-operator.dev/sdk-go/fakehost"
	"wasm-operator.dev/sdk-go/hosterr"
	"wasm-operator.dev/sdk-go/httpclient"
)

func setup(t *testing.T, answer abi.HostResponse) *fakehost.Host {
	t.Helper()
	h := fakehost.New()
	h.OnHTTP = func(abi.HTTPRequest) abi.HostResponse { return answer }
	t.Cleanup(h.Install())
	return h
}

func TestDoSendsTheRequestAndReturnsTheResponse(t *testing.T) {
	h := setup(t, fakehost.HTTPOK(201, map[string]string{"Content-Type": "text/plain"}, "created"))
	resp, err := httpclient.Do(context.Background(), httpclient.Request{
		Method: "POST", URL: "http://127.0.0.1:9090/x", Headers: map[string]string{"x-a": "1"},
		Body: []byte("hello"), Timeout: 1500 * time.Microsecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"method":"POST","url":"http://127.0.0.1:9090/x","headers":{"x-a":"1"},"body":"hello","timeoutMs":2}`
	if got := string(h.RawHTTPRequests[0]); got != want {
		t.Fatalf("request\n got  %s\n want %s", got, want)
	}
	if resp.StatusCode != 201 || string(resp.Body) != "created" || resp.Header("content-type") != "text/plain" || !resp.IsSuccess() {
		t.Fatalf("response %+v", resp)
	}
}

func TestGetDefaults(t *testing.T) {
	h := setup(t, fakehost.HTTPOK(200, nil, ""))
	if _, err := httpclient.Get(context.Background(), "http://h/"); err != nil {
		t.Fatal(err)
	}
	if got, want := string(h.RawHTTPRequests[0]), `{"method":"GET","url":"http://h/"}`; got != want {
		t.Fatalf("request\n got  %s\n want %s", got, want)
	}
}

func TestContextDeadlineCapsTheTimeout(t *testing.T) {
	h := setup(t, fakehost.HTTPOK(200, nil, ""))
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	if _, err := httpclient.Do(ctx, httpclient.Request{URL: "http://h/", Timeout: 2 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	ms := *h.HTTPRequests[0].TimeoutMs
	if ms > uint64(time.Hour/time.Millisecond) || ms < uint64(59*time.Minute/time.Millisecond) {
		t.Fatalf("timeoutMs %d not capped to the context's hour", ms)
	}

	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	if _, err := httpclient.Get(expired, "http://h/"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("expired context: %v", err)
	}
	if len(h.HTTPRequests) != 1 {
		t.Fatal("a request with an expired context reached the host")
	}
}

func TestGetJSON(t *testing.T) {
	h := setup(t, fakehost.HTTPOK(200, nil, `{"status":"success","data":{"result":[1,2]}}`))
	var out struct {
		Status string `json:"status"`
		Data   struct {
			Result []int `json:"result"`
		} `json:"data"`
	}
	if err := httpclient.GetJSON(context.Background(), "http://h/q", &out); err != nil {
		t.Fatal(err)
	}
	if out.Status != "success" || len(out.Data.Result) != 2 || h.HTTPRequests[0].Headers["accept"] != "application/json" {
		t.Fatalf("out %+v, headers %v", out, h.HTTPRequests[0].Headers)
	}
}

func TestResponseDecodeJSON(t *testing.T) {
	setup(t, fakehost.HTTPOK(422, nil, `{"error":"bad query"}`))
	resp, err := httpclient.Get(context.Background(), "http://h/q")
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Error string `json:"error"`
	}
	if err := resp.DecodeJSON(&out); err != nil || out.Error != "bad query" {
		t.Fatalf("decoded %+v, %v", out, err)
	}
	resp.Body = []byte("not JSON")
	if err := resp.DecodeJSON(&out); err == nil || !strings.Contains(err.Error(), "status 422") {
		t.Fatalf("a body that is not JSON: %v", err)
	}
}

func TestGetJSONNon2xx(t *testing.T) {
	setup(t, fakehost.HTTPOK(503, nil, "unavailable"))
	var out any
	err := httpclient.GetJSON(context.Background(), "http://h/q", &out)
	var sce *httpclient.StatusCodeError
	if !errors.As(err, &sce) || sce.StatusCode != 503 || sce.Body != "unavailable" {
		t.Fatalf("err = %v", err)
	}
}

func TestDeniedURL(t *testing.T) {
	setup(t, fakehost.Error(abi.ErrorCapabilityDenied, "http request to https://evil.example/ refused: not in the operator's allowlist"))
	_, err := httpclient.Get(context.Background(), "https://evil.example/")
	if !hosterr.IsCapabilityDenied(err) {
		t.Fatalf("err = %v", err)
	}
}
