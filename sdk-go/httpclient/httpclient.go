// Package httpclient makes outbound HTTP requests through the host, which performs them only for
// URLs in the operator's allowlist; others fail with an error for which
// hosterr.IsCapabilityDenied is true. Bodies are UTF-8 text in ABI v1.
//
// A response with any status code is a successful request; Do does not turn 4xx or 5xx into
// errors, GetJSON does.
package httpclient

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"wasm-operator.dev/sdk-go/abi"
	"wasm-operator.dev/sdk-go/internal/hostcall"
)

// Request is an outbound HTTP request.
type Request struct {
	Method  string            // "GET" when empty
	URL     string            // absolute http:// or https:// URL
	Headers map[string]string // header names are case-insensitive; the host sends them as given
	Body    []byte            // nil: no body
	Timeout time.Duration     // 0: the host's default; also capped by ctx's deadline
}

// Response is what the server answered.
type Response struct {
	StatusCode int
	Headers    map[string]string // names in lower case
	Body       []byte
}

// Header returns a response header by case-insensitive name, or "".
func (r *Response) Header(name string) string {
	return r.Headers[strings.ToLower(name)]
}

// IsSuccess reports a 2xx status.
func (r *Response) IsSuccess() bool { return r.StatusCode >= 200 && r.StatusCode < 300 }

// DecodeJSON decodes the body into into, whatever the status code (check IsSuccess first when
// only a success has the shape you expect, or use GetJSON).
func (r *Response) DecodeJSON(into any) error {
	if err := json.Unmarshal(r.Body, into); err != nil {
		return fmt.Errorf("decoding JSON response (status %d): %w", r.StatusCode, err)
	}
	return nil
}

// StatusCodeError is returned by GetJSON for a non-2xx response.
type StatusCodeError struct {
	URL        string
	StatusCode int
	Body       string // the start of the response body, for the error message
}

func (e *StatusCodeError) Error() string {
	return fmt.Sprintf("GET %s: status %d: %s", e.URL, e.StatusCode, e.Body)
}

// Do performs req.
func Do(ctx context.Context, req Request) (*Response, error) {
	method := req.Method
	if method == "" {
		method = "GET"
	}
	wire := abi.HTTPRequest{Method: method, URL: req.URL, Headers: req.Headers}
	if wire.Headers == nil {
		wire.Headers = map[string]string{}
	}
	if req.Body != nil {
		body := string(req.Body)
		wire.Body = &body
	}
	timeout := req.Timeout
	if deadline, ok := ctx.Deadline(); ok {
		if remaining := time.Until(deadline); remaining <= 0 {
			return nil, context.DeadlineExceeded
		} else if timeout <= 0 || remaining < timeout {
			timeout = remaining
		}
	}
	if timeout > 0 {
		ms := uint64((timeout + time.Millisecond - 1) / time.Millisecond)
		wire.TimeoutMs = &ms
	}
	resp, err := hostcall.HTTP(wire)
	if err != nil {
		return nil, err
	}
	headers := make(map[string]string, len(resp.Headers))
	for k, v := range resp.Headers {
		headers[strings.ToLower(k)] = v
	}
	return &Response{StatusCode: resp.Status, Headers: headers, Body: []byte(resp.Body)}, nil
}

// Get performs a GET of url.
func Get(ctx context.Context, url string) (*Response, error) {
	return Do(ctx, Request{Method: "GET", URL: url})
}

// GetJSON performs a GET of url with "accept: application/json" and decodes a 2xx body into
// into. Other statuses return a *StatusCodeError.
func GetJSON(ctx context.Context, url string, into any) error {
	resp, err := Do(ctx, Request{Method: "GET", URL: url, Headers: map[string]string{"accept": "application/json"}})
	if err != nil {
		return err
	}
	if !resp.IsSuccess() {
		body := string(resp.Body)
		if len(body) > 200 {
			body = body[:200] + "..."
		}
		return &StatusCodeError{URL: url, StatusCode: resp.StatusCode, Body: body}
	}
	if err := json.Unmarshal(resp.Body, into); err != nil {
		return fmt.Errorf("GET %s: decoding JSON: %w", url, err)
	}
	return nil
}
