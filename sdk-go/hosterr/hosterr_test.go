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

// The decision table of docs/abi.md ("Not found, conflict"): a known reason decides; a missing or
// unknown reason leaves it to the code, where 404 means not found and 409 means conflict.
func TestSpecClassification(t *testing.T) {
	apiError := func(code int32, reason string) error {
		return hosterr.FromWire(&abi.HostError{Type: abi.ErrorAPIStatus, Message: "m", Status: &abi.Status{Reason: reason, Code: code}})
	}
	cases := []struct {
		code                              int32
		reason                            string
		notFound, conflict, alreadyExists bool
	}{
		{404, "NotFound", true, false, false},
		{404, "", true, false, false},
		{404, "SomethingNew", true, false, false},
		{404, "Forbidden", false, false, false},
		{409, "Conflict", false, true, false},
		{409, "", false, true, false},
		{409, "SomethingNew", false, true, false},
		{409, "AlreadyExists", false, false, true},
		{500, "AlreadyExists", false, false, true},
		{500, "InternalError", false, false, false},
		{0, "", false, false, false},
	}
	for _, c := range cases {
		err := apiError(c.code, c.reason)
		got := [3]bool{hosterr.IsNotFound(err), hosterr.IsConflict(err), hosterr.IsAlreadyExists(err)}
		want := [3]bool{c.notFound, c.conflict, c.alreadyExists}
		if got != want {
			t.Errorf("%d %q: (notFound, conflict, alreadyExists) = %v, want %v", c.code, c.reason, got, want)
		}
	}
	for _, other := range []abi.HostError{
		{Type: abi.ErrorTimeout, Message: "t"}, {Type: abi.ErrorTransport, Message: "t"},
		{Type: abi.ErrorCapabilityDenied, Message: "t"}, {Type: abi.ErrorInvalidRequest, Message: "404"},
	} {
		err := hosterr.FromWire(&other)
		if hosterr.IsNotFound(err) || hosterr.IsConflict(err) || hosterr.IsAlreadyExists(err) {
			t.Errorf("%s error classified as an API error", other.Type)
		}
	}
}

// A 500 without a known reason is an internal error; only the Timeout reasons and 504 are timeouts.
func TestTimeoutClassification(t *testing.T) {
	status := func(code int32, reason string) error {
		return hosterr.FromWire(&abi.HostError{Type: abi.ErrorAPIStatus, Status: &abi.Status{Reason: reason, Code: code}})
	}
	if hosterr.IsTimeout(status(500, "")) {
		t.Error("a bare 500 is not a timeout")
	}
	if !hosterr.IsTimeout(status(500, "ServerTimeout")) || !hosterr.IsTimeout(status(504, "")) {
		t.Error("ServerTimeout and a bare 504 are timeouts")
	}
}
