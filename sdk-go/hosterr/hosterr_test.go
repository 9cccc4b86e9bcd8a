// Host errors as Go errors, and how the predicates classify them.

package hosterr_test

import (
	"errors"
	"fmt"
	"testing"

	"wasm-operator.dev/sdk-go/abi"
	"wasm-operator.dev/sdk-go/hosterr"
)

func TestFromWireTypes(t *testing.T) {
	limit := hosterr.FromWire(&abi.HostError{Type: abi.ErrorLimitExceeded, Message: "too big", Limit: "responseSize"})
	var le *hosterr.LimitExceededError
	if !errors.As(limit, &le) || le.Limit != "responseSize" || !hosterr.IsLimitExceeded(limit) {
		t.Fatalf("limit: %#v", limit)
	}
	unknown := hosterr.FromWire(&abi.HostError{Type: "quotaExhausted", Message: "later"})
	if unknown.Error() != "quotaExhausted: later" {
		t.Fatalf("unknown: %v", unknown)
	}
	// An apiStatus without a status object still counts as an API error with the message.
	bare := hosterr.FromWire(&abi.HostError{Type: abi.ErrorAPIStatus, Message: "odd"})
	if status, ok := hosterr.APIStatus(bare); !ok || status.Message != "odd" {
		t.Fatalf("bare: %#v", bare)
	}
}

func TestPredicatesSeeThroughWrapping(t *testing.T) {
	err := fmt.Errorf("reconciling: %w", hosterr.FromWire(&abi.HostError{Type: abi.ErrorAPIStatus, Message: "gone",
		Status: &abi.Status{Reason: "NotFound", Code: 404}}))
	if !hosterr.IsNotFound(err) || hosterr.IsConflict(err) || hosterr.IsCapabilityDenied(err) {
		t.Fatal("wrapped not-found misclassified")
	}
	if !hosterr.IsTimeout(hosterr.FromWire(&abi.HostError{Type: abi.ErrorAPIStatus, Status: &abi.Status{Reason: "Timeout", Code: 504}})) {
		t.Fatal("an API server timeout is a timeout")
	}
}

// The reason wins over the code: 409 is both AlreadyExists and Conflict, told apart by reason.
func TestReasonDisambiguatesCode(t *testing.T) {
	exists := hosterr.FromWire(&abi.HostError{Type: abi.ErrorAPIStatus, Status: &abi.Status{Reason: "AlreadyExists", Code: 409}})
	if hosterr.IsConflict(exists) || !hosterr.IsAlreadyExists(exists) {
		t.Fatal("409 AlreadyExists misclassified")
	}
}

// A reason Kubernetes does not define leaves the decision to the code.
func TestUnknownReasonFallsBackToCode(t *testing.T) {
	err := hosterr.FromWire(&abi.HostError{Type: abi.ErrorAPIStatus, Status: &abi.Status{Reason: "SomethingNew", Code: 404}})
	if !hosterr.IsNotFound(err) {
		t.Fatal("404 with an unknown reason is not found")
	}
	if hosterr.IsNotFound(hosterr.FromWire(&abi.HostError{Type: abi.ErrorAPIStatus, Status: &abi.Status{Reason: "Forbidden", Code: 404}})) {
		t.Fatal("a known reason must win over the code")
	}
}
