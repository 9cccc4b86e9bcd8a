// Package hostcall performs one host call end to end: marshal the request, call the import, pull
// the HostResponse, and return either the "ok" value or the error as a hosterr type.
package hostcall

import (
	"encoding/json"
	"fmt"

	"wasm-operator.dev/sdk-go/abi"
	"wasm-operator.dev/sdk-go/hosterr"
)

// Kube performs a Kubernetes request and returns the API server's answer.
func Kube(req abi.KubeRequest) (json.RawMessage, error) {
	payload, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encoding %s request for %s: %w", req.Verb, req.Kind, err)
	}
	raw, err := abi.CallKube(payload)
	if err != nil {
		return nil, err
	}
	return unwrap(raw)
}

// HTTP performs an outbound HTTP request.
func HTTP(req abi.HTTPRequest) (*abi.HTTPResponse, error) {
	payload, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encoding http request: %w", err)
	}
	raw, err := abi.CallHTTP(payload)
	if err != nil {
		return nil, err
	}
	ok, err := unwrap(raw)
	if err != nil {
		return nil, err
	}
	var resp abi.HTTPResponse
	if err := json.Unmarshal(ok, &resp); err != nil {
		return nil, fmt.Errorf("abi: malformed http response from host: %w", err)
	}
	return &resp, nil
}

func unwrap(raw []byte) (json.RawMessage, error) {
	var resp abi.HostResponse
	if err := json.Unmarshal(raw, &resp); err != nil {
		return nil, fmt.Errorf("abi: malformed response from host: %w", err)
	}
	if resp.Error != nil {
		return nil, hosterr.FromWire(resp.Error)
	}
	return resp.Ok, nil
}
