// Conditions: lastTransitionTime moves only when the status does.

package conventions

import (
	"time"

	"wasm-operator.dev/sdk-go/controllerutil"
	"wasm-operator.dev/sdk-go/types"
)

// ReadyCondition is the condition type every example reports.
const ReadyCondition = "Ready"

// Transition returns next with its lastTransitionTime set: kept from the condition of the same
// type in previous when the status is unchanged, now otherwise (a new condition or a flip).
// changed reports a new condition or a status flip, which is when the examples record an Event.
func Transition(previous []types.Condition, next types.Condition, now time.Time) (condition types.Condition, changed bool) {
	old := controllerutil.FindCondition(previous, next.Type)
	if old != nil && old.Status == next.Status {
		next.LastTransitionTime = old.LastTransitionTime
		return next, false
	}
	next.LastTransitionTime = types.NewTime(now)
	return next, true
}
