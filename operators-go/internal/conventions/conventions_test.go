// The shared rules: when a status counts as changed, and how lastTransitionTime moves.

package conventions

import (
	"encoding/json"
	"testing"
	"time"

	"wasm-operator.dev/sdk-go/types"
)

func TestStatusDiffers(t *testing.T) {
	const current = `{"observedGeneration":1,"readyReplicas":2,"conditions":[{"type":"Ready","status":"True",` +
		`"reason":"DeploymentReady","message":"2/2 replicas ready","lastTransitionTime":"2025-01-01T00:00:00Z"}]}`
	cases := []struct {
		name    string
		current string
		desired string
		differs bool
	}{
		{"same", current, current, false},
		{"only lastTransitionTime", current, `{"observedGeneration":1,"readyReplicas":2,"conditions":[{"type":"Ready","status":"True",` +
			`"reason":"DeploymentReady","message":"2/2 replicas ready","lastTransitionTime":"2026-06-06T00:00:00Z"}]}`, false},
		{"key order", current, `{"readyReplicas":2,"conditions":[{"message":"2/2 replicas ready","reason":"DeploymentReady",` +
			`"status":"True","type":"Ready"}],"observedGeneration":1}`, false},
		{"a value", current, `{"observedGeneration":2,"readyReplicas":2,"conditions":[{"type":"Ready","status":"True",` +
			`"reason":"DeploymentReady","message":"2/2 replicas ready"}]}`, true},
		{"a condition field", current, `{"observedGeneration":1,"readyReplicas":2,"conditions":[{"type":"Ready","status":"True",` +
			`"reason":"DeploymentReady","message":"2/2 replicas ready","observedGeneration":1}]}`, true},
		{"null is absent", `{"lastValue":"1"}`, `{"lastValue":"1","lastError":null}`, false},
		{"a cleared field", `{"lastValue":"1","lastError":"boom"}`, `{"lastValue":"1","lastError":null}`, true},
		{"no status yet", ``, `{"totalSeen":1}`, true},
		{"null status, empty desire", `null`, `{}`, false},
		{"integer and float differ", `{"n":3}`, `{"n":3.0}`, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			differs, err := StatusDiffers(json.RawMessage(c.current), json.RawMessage(c.desired))
			if err != nil {
				t.Fatal(err)
			}
			if differs != c.differs {
				t.Fatalf("differs = %v, want %v", differs, c.differs)
			}
		})
	}
}

func TestTransition(t *testing.T) {
	earlier := types.NewTime(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	now := time.Date(2026, 1, 2, 3, 4, 5, 999, time.UTC)
	previous := []types.Condition{{Type: "Other", Status: types.ConditionFalse}, {Type: "Ready", Status: types.ConditionFalse, LastTransitionTime: earlier}}

	kept, changed := Transition(previous, types.Condition{Type: "Ready", Status: types.ConditionFalse, Message: "new words"}, now)
	if changed || !kept.LastTransitionTime.Equal(earlier.Time) || kept.Message != "new words" {
		t.Fatalf("same status: %+v changed=%v", kept, changed)
	}
	flipped, changed := Transition(previous, types.Condition{Type: "Ready", Status: types.ConditionTrue}, now)
	if !changed || flipped.LastTransitionTime.Time != now.Truncate(time.Second) {
		t.Fatalf("flip: %+v changed=%v", flipped, changed)
	}
	fresh, changed := Transition(nil, types.Condition{Type: "Ready", Status: types.ConditionFalse}, now)
	if !changed || fresh.LastTransitionTime.Time != now.Truncate(time.Second) {
		t.Fatalf("new: %+v changed=%v", fresh, changed)
	}
}
