// AsType finds what errors.As finds, through every kind of wrapping.

package hosterr_test

import (
	"errors"
	"fmt"
	"testing"

	"wasm-operator.dev/sdk-go/abi"
	"wasm-operator.dev/sdk-go/hosterr"
)

func TestAsTypeAgreesWithErrorsAs(t *testing.T) {
	notFound := hosterr.FromWire(&abi.HostError{Type: abi.ErrorAPIStatus, Status: &abi.Status{Reason: "NotFound", Code: 404}})
	timeout := &hosterr.TimeoutError{Message: "slow"}
	chains := map[string]error{
		"nil":            nil,
		"bare":           notFound,
		"wrapped twice":  fmt.Errorf("outer: %w", fmt.Errorf("inner: %w", notFound)),
		"joined, second": errors.Join(errors.New("first"), fmt.Errorf("x: %w", notFound)),
		"multi %w":       fmt.Errorf("%w and %w", timeout, notFound),
		"other type":     fmt.Errorf("x: %w", timeout),
		"no wrapping":    errors.New("plain"),
	}
	for name, err := range chains {
		var want *hosterr.StatusError
		wantOK := errors.As(err, &want)
		got, ok := hosterr.AsType[*hosterr.StatusError](err)
		if ok != wantOK || got != want {
			t.Errorf("%s: AsType = (%v, %v), errors.As = (%v, %v)", name, got, ok, want, wantOK)
		}
	}
	if got, ok := hosterr.AsType[*hosterr.TimeoutError](chains["multi %w"]); !ok || got != timeout {
		t.Errorf("the first match in a multi-error is found: (%v, %v)", got, ok)
	}
}
