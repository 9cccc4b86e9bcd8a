// Events as the examples record them.

package conventions

import (
	"time"

	"wasm-operator.dev/sdk-go/client"
	"wasm-operator.dev/sdk-go/events"
)

// EventAction is the action of every Event the examples record.
const EventAction = "Reconcile"

// NewRecorder returns the Event recorder of the example named operator: reportingController
// "demo.wasm-operator.dev/<operator>" and reportingInstance "<operator>". The example's own name is
// used, not the name the host gives the instance, so that every deployment of an example (and
// both languages) reports the same way.
func NewRecorder(c client.Client, operator string, now func() time.Time) *events.Recorder {
	return events.NewRecorder(c,
		events.ReportingController(Group+"/"+operator),
		events.ReportingInstance(operator),
		events.WithClock(now))
}
