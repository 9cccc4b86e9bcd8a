// Package hosterr turns the errors the host reports (abi.HostError) into Go errors, and offers the
// predicates operators branch on: IsNotFound, IsConflict and friends for Kubernetes API errors,
// IsCapabilityDenied, IsTimeout and friends for everything else.
//
// Package client re-exports the Kubernetes predicates, so most reconcilers only import client.
package hosterr

import (
	"wasm-operator.dev/sdk-go/abi"
)

// StatusError is a request the Kubernetes API server refused; Status is its meta/v1 Status.
type StatusError struct {
	Status abi.Status
}

func (e *StatusError) Error() string {
	if e.Status.Message != "" {
		return e.Status.Message
	}
	return "kubernetes API error: " + e.Status.Reason
}

// CapabilityDeniedError: the operator asked for something it was not granted, such as a URL
// outside its HTTP allowlist.
type CapabilityDeniedError struct{ Message string }

func (e *CapabilityDeniedError) Error() string { return e.Message }

// LimitExceededError: a per-operator limit was hit; Limit names it (e.g. "responseSize").
type LimitExceededError struct {
	Message string
	Limit   string
}

func (e *LimitExceededError) Error() string { return e.Message }

// TimeoutError: the host gave up waiting for the request.
type TimeoutError struct{ Message string }

func (e *TimeoutError) Error() string { return e.Message }

// TransportError: the request could not be delivered (connection refused, TLS failure, ...).
type TransportError struct{ Message string }

func (e *TransportError) Error() string { return e.Message }

// InvalidRequestError: the host rejected the request itself, e.g. an unknown kind.
type InvalidRequestError struct{ Message string }

func (e *InvalidRequestError) Error() string { return e.Message }

// UnknownError is a host error of a type this SDK does not know (a newer host).
type UnknownError struct {
	Type    string
	Message string
}

func (e *UnknownError) Error() string { return e.Type + ": " + e.Message }

// FromWire converts a HostError from the wire into the matching Go error.
func FromWire(w *abi.HostError) error {
	switch w.Type {
	case abi.ErrorAPIStatus:
		status := abi.Status{Message: w.Message}
		if w.Status != nil {
			status = *w.Status
			if status.Message == "" {
				status.Message = w.Message
			}
		}
		return &StatusError{Status: status}
	case abi.ErrorCapabilityDenied:
		return &CapabilityDeniedError{Message: w.Message}
	case abi.ErrorLimitExceeded:
		return &LimitExceededError{Message: w.Message, Limit: w.Limit}
	case abi.ErrorTimeout:
		return &TimeoutError{Message: w.Message}
	case abi.ErrorTransport:
		return &TransportError{Message: w.Message}
	case abi.ErrorInvalidRequest:
		return &InvalidRequestError{Message: w.Message}
	}
	return &UnknownError{Type: w.Type, Message: w.Message}
}

// Reasons the Kubernetes API server puts in Status.reason.
const (
	ReasonNotFound         = "NotFound"
	ReasonAlreadyExists    = "AlreadyExists"
	ReasonConflict         = "Conflict"
	ReasonForbidden        = "Forbidden"
	ReasonUnauthorized     = "Unauthorized"
	ReasonInvalid          = "Invalid"
	ReasonGone             = "Gone"
	ReasonTooManyRequests  = "TooManyRequests"
	ReasonServerTimeout    = "ServerTimeout"
	ReasonTimeout          = "Timeout"
	ReasonMethodNotAllowed = "MethodNotAllowed"
)

// APIStatus returns the Kubernetes Status inside err, if err is (or wraps) a StatusError.
func APIStatus(err error) (abi.Status, bool) {
	if se, ok := AsType[*StatusError](err); ok {
		return se.Status, true
	}
	return abi.Status{}, false
}

// knownReasons are the reasons Kubernetes defines (meta/v1 StatusReason). docs/abi.md decides as
// client-go does: a Status with one of these reasons is classified by its reason alone; one with
// no reason, or a reason this list does not know, by its HTTP code. That is what tells a 409
// AlreadyExists from a 409 Conflict.
var knownReasons = map[string]bool{
	ReasonNotFound: true, ReasonAlreadyExists: true, ReasonConflict: true, ReasonForbidden: true,
	ReasonUnauthorized: true, ReasonInvalid: true, ReasonGone: true, ReasonTooManyRequests: true,
	ReasonServerTimeout: true, ReasonTimeout: true, ReasonMethodNotAllowed: true,
	"BadRequest": true, "NotAcceptable": true, "RequestEntityTooLarge": true, "UnsupportedMediaType": true,
	"InternalError": true, "Expired": true, "ServiceUnavailable": true, "StoreReadError": true,
}

// reasonOrCode reports whether err carries a Status with the given reason or, when its reason is
// missing or unknown, with the HTTP code the spec assigns to that reason.
func reasonOrCode(err error, reason string, code int32) bool {
	status, ok := APIStatus(err)
	if !ok {
		return false
	}
	if knownReasons[status.Reason] {
		return status.Reason == reason
	}
	return status.Code == code
}

// hasReason reports whether err carries a Status with exactly this reason. It is for reasons that
// share their HTTP code with a more general one (AlreadyExists and Conflict are both 409; the code
// alone means Conflict), so the code cannot stand in for them.
func hasReason(err error, reason string) bool {
	status, ok := APIStatus(err)
	return ok && status.Reason == reason
}

// IsNotFound: the object does not exist (reason NotFound, or 404 without a known reason).
func IsNotFound(err error) bool { return reasonOrCode(err, ReasonNotFound, 404) }

// IsAlreadyExists: a create found the name taken (reason AlreadyExists). A 409 without a known
// reason is a conflict, not this.
func IsAlreadyExists(err error) bool { return hasReason(err, ReasonAlreadyExists) }

// IsConflict: the write lost a race (reason Conflict, or 409 without a known reason), usually a
// stale resourceVersion: get the object again and retry. A 409 AlreadyExists is not a conflict.
func IsConflict(err error) bool { return reasonOrCode(err, ReasonConflict, 409) }

// IsForbidden: RBAC refused the request (403).
func IsForbidden(err error) bool { return reasonOrCode(err, ReasonForbidden, 403) }

// IsUnauthorized: the request had no valid credentials (401).
func IsUnauthorized(err error) bool { return reasonOrCode(err, ReasonUnauthorized, 401) }

// IsInvalid: the object failed validation (422); the Status details list the fields.
func IsInvalid(err error) bool { return reasonOrCode(err, ReasonInvalid, 422) }

// IsGone: the resource version is too old (410).
func IsGone(err error) bool { return reasonOrCode(err, ReasonGone, 410) }

// IsTooManyRequests: the API server is throttling (429).
func IsTooManyRequests(err error) bool { return reasonOrCode(err, ReasonTooManyRequests, 429) }

// IsCapabilityDenied: the host refused the request because the operator lacks the capability.
func IsCapabilityDenied(err error) bool {
	_, ok := AsType[*CapabilityDeniedError](err)
	return ok
}

// IsLimitExceeded: a per-operator limit was hit.
func IsLimitExceeded(err error) bool {
	_, ok := AsType[*LimitExceededError](err)
	return ok
}

// IsTimeout: the host timed the request out, or the API server reported a timeout (reason Timeout
// or ServerTimeout, or 504 without a known reason; a bare 500 is an internal error, not a timeout).
func IsTimeout(err error) bool {
	if _, ok := AsType[*TimeoutError](err); ok {
		return true
	}
	return reasonOrCode(err, ReasonTimeout, 504) || hasReason(err, ReasonServerTimeout)
}

// IsTransport: the request could not be delivered.
func IsTransport(err error) bool {
	_, ok := AsType[*TransportError](err)
	return ok
}

// IsInvalidRequest: the host rejected the request as malformed.
func IsInvalidRequest(err error) bool {
	_, ok := AsType[*InvalidRequestError](err)
	return ok
}
