// Status conditions, with apimachinery's meta.SetStatusCondition semantics.

package controllerutil

import (
	"time"

	"wasm-operator.dev/sdk-go/types"
)

// now is the clock SetCondition uses; tests replace it.
var now = time.Now

// SetCondition adds or updates the condition of the same type in *conditions and reports whether
// anything changed. lastTransitionTime is set to now when the status changes (or the condition is
// new) and kept otherwise, unless the caller set it explicitly on a new status, so it tells when
// the condition last flipped rather than when it was last written.
func SetCondition(conditions *[]types.Condition, condition types.Condition) (changed bool) {
	existing := FindCondition(*conditions, condition.Type)
	if existing == nil {
		if condition.LastTransitionTime.IsZero() {
			condition.LastTransitionTime = types.NewTime(now())
		}
		*conditions = append(*conditions, condition)
		return true
	}
	if existing.Status != condition.Status {
		existing.Status = condition.Status
		if condition.LastTransitionTime.IsZero() {
			existing.LastTransitionTime = types.NewTime(now())
		} else {
			existing.LastTransitionTime = condition.LastTransitionTime
		}
		changed = true
	}
	if existing.Reason != condition.Reason {
		existing.Reason = condition.Reason
		changed = true
	}
	if existing.Message != condition.Message {
		existing.Message = condition.Message
		changed = true
	}
	if existing.ObservedGeneration != condition.ObservedGeneration {
		existing.ObservedGeneration = condition.ObservedGeneration
		changed = true
	}
	return changed
}

// FindCondition returns the condition of the given type, or nil. The pointer refers into the
// slice, so changes through it change the slice.
func FindCondition(conditions []types.Condition, conditionType string) *types.Condition {
	for i := range conditions {
		if conditions[i].Type == conditionType {
			return &conditions[i]
		}
	}
	return nil
}

// RemoveCondition deletes the condition of the given type and reports whether it was there.
func RemoveCondition(conditions *[]types.Condition, conditionType string) bool {
	kept := (*conditions)[:0:0]
	for _, c := range *conditions {
		if c.Type != conditionType {
			kept = append(kept, c)
		}
	}
	removed := len(kept) != len(*conditions)
	*conditions = kept
	return removed
}

// IsConditionTrue reports whether the condition exists with status True.
func IsConditionTrue(conditions []types.Condition, conditionType string) bool {
	c := FindCondition(conditions, conditionType)
	return c != nil && c.Status == types.ConditionTrue
}
