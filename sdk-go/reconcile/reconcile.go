// Package reconcile defines what an operator implements: a Reconciler that receives a Request for
// one object and returns a Result, as in controller-runtime.
//
// The host calls Reconcile whenever the object, something it owns or something it watches changes,
// and when a requested requeue comes due. Reconcile must be idempotent: it compares the desired
// state with the cluster and closes the gap, whatever triggered it.
package reconcile

import (
	"context"
	"encoding/json"
	"time"

	"wasm-operator.dev/sdk-go/hosterr"
	"wasm-operator.dev/sdk-go/types"
)

// Request identifies the object to reconcile, and carries the copy the host had in its cache.
type Request struct {
	types.NamespacedName
	APIVersion string
	Kind       string
	// Object is the object as the host's cache held it when the request was made, or nil when the
	// host has no copy; AbsentReason then says why. Decode it with DecodeObject, or Get a fresh
	// copy.
	Object json.RawMessage
	// AbsentReason says why Object is nil, and is "" when it is not: AbsentDeleted,
	// AbsentNotSelected or AbsentUnknown. Only AbsentDeleted means the object is gone.
	AbsentReason AbsentReason
	// Attempt counts the consecutive failed reconciles of this object before this one (0 the
	// first time). Use it to give up on, or report, persistent failures.
	Attempt int
}

// AbsentReason says why a Request carries no object.
type AbsentReason string

// The reasons a Request has no object.
const (
	// AbsentDeleted: the object no longer exists.
	AbsentDeleted AbsentReason = "deleted"
	// AbsentNotSelected: the object still exists but no longer matches the label selector of the
	// operator's For watch (someone removed or changed the label), so the host stopped caching it.
	// It is not a deletion: its finalizers, owned objects and external resources are still there.
	AbsentNotSelected AbsentReason = "notSelected"
	// AbsentUnknown: the host could not tell. Also what a reason this SDK does not know, or a
	// missing one from a host that predates the field, becomes.
	AbsentUnknown AbsentReason = "unknown"
)

// ParseAbsentReason maps the ABI's absentReason to an AbsentReason: "deleted" and "notSelected"
// as themselves, anything else (including "") to AbsentUnknown, as the ABI asks of guests.
func ParseAbsentReason(wire string) AbsentReason {
	switch reason := AbsentReason(wire); reason {
	case AbsentDeleted, AbsentNotSelected:
		return reason
	}
	return AbsentUnknown
}

// ObjectDeleted reports whether the host said the object no longer exists. It is false when the
// request carries the object, and when the object is missing for another reason (AbsentNotSelected,
// AbsentUnknown): then the object may well exist, and a Get tells.
func (r Request) ObjectDeleted() bool { return r.AbsentReason == AbsentDeleted }

// DecodeObject decodes the cached object into obj. It returns false when the request carries no
// object. A missing object is not always a deletion: AbsentReason says why it is missing. Only
// AbsentDeleted (ObjectDeleted) means it is gone; with AbsentNotSelected it still exists but left
// the For watch's label selector, and with AbsentUnknown the host could not tell. An operator
// that cleans up on deletion, or holds a finalizer, must not treat a missing object as deleted:
// Get it (without client.FromCache, since the host's cache no longer holds it) and act on what the
// API server says. A finalizer's cleanup runs when the object's deletionTimestamp is set, which a
// Get shows; the object is not gone until its finalizers are removed.
func (r Request) DecodeObject(obj types.Object) (bool, error) {
	if len(r.Object) == 0 || string(r.Object) == "null" {
		return false, nil
	}
	return true, json.Unmarshal(r.Object, obj)
}

// Result tells the host when to reconcile this object again, besides on the next change.
type Result struct {
	// Requeue asks for another reconcile soon, rate-limited with backoff by the host.
	Requeue bool
	// RequeueAfter asks for another reconcile after this long (rounded up to whole milliseconds).
	// The host keeps the timer, so it fires even if the operator is swapped out meanwhile.
	RequeueAfter time.Duration
}

// IsZero reports whether the result asks for nothing.
func (r Result) IsZero() bool { return !r.Requeue && r.RequeueAfter <= 0 }

// Reconciler is what an operator implements.
type Reconciler interface {
	Reconcile(ctx context.Context, req Request) (Result, error)
}

// Func adapts a function to Reconciler.
type Func func(ctx context.Context, req Request) (Result, error)

// Reconcile calls f.
func (f Func) Reconcile(ctx context.Context, req Request) (Result, error) { return f(ctx, req) }

// TerminalError marks err as one that retrying will not fix (a spec that can never be valid, for
// instance). The host is told the reconcile succeeded, so it does not retry with backoff; the error
// is logged. A later change to the object reconciles it again as usual.
func TerminalError(err error) error {
	if err == nil {
		return nil
	}
	return &terminalError{err: err}
}

type terminalError struct{ err error }

func (e *terminalError) Error() string { return "terminal error: " + e.err.Error() }
func (e *terminalError) Unwrap() error { return e.err }

// IsTerminal reports whether err was marked with TerminalError.
func IsTerminal(err error) bool {
	_, ok := hosterr.AsType[*terminalError](err)
	return ok
}
