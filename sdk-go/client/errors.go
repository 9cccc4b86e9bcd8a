// The Kubernetes error predicates reconcilers use most, re-exported from package hosterr so a
// reconciler that only talks to the API server needs one import.

package client

import "wasm-operator.dev/sdk-go/hosterr"

// StatusError is a request the API server refused; see hosterr.StatusError.
type StatusError = hosterr.StatusError

// IsNotFound reports whether err says the object does not exist (404 / NotFound).
func IsNotFound(err error) bool { return hosterr.IsNotFound(err) }

// IsConflict reports whether err says the write lost a race (409 / Conflict): read and retry.
func IsConflict(err error) bool { return hosterr.IsConflict(err) }

// IsAlreadyExists reports whether a create found the name taken (reason AlreadyExists; a 409
// without a known reason is a conflict instead).
func IsAlreadyExists(err error) bool { return hosterr.IsAlreadyExists(err) }

// IsForbidden reports whether RBAC refused the request (403 / Forbidden).
func IsForbidden(err error) bool { return hosterr.IsForbidden(err) }

// IsInvalid reports whether the object failed validation (422 / Invalid).
func IsInvalid(err error) bool { return hosterr.IsInvalid(err) }

// IgnoreNotFound returns nil for a not-found error and err otherwise, for the common "it is gone,
// nothing to do" case.
func IgnoreNotFound(err error) error {
	if IsNotFound(err) {
		return nil
	}
	return err
}

// IgnoreAlreadyExists returns nil for an already-exists error and err otherwise.
func IgnoreAlreadyExists(err error) error {
	if IsAlreadyExists(err) {
		return nil
	}
	return err
}
