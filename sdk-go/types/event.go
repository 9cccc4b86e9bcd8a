// events.k8s.io/v1 Event, the kind `kubectl events` and `kubectl describe` show. Package events
// creates them; this is the object itself.

package types

// Event types.
const (
	EventTypeNormal  = "Normal"
	EventTypeWarning = "Warning"
)

// Event reports something that happened to an object (Regarding).
type Event struct {
	TypeMeta
	ObjectMeta          `json:"metadata"`
	EventTime           MicroTime        `json:"eventTime"`
	Series              *EventSeries     `json:"series,omitempty"`
	ReportingController string           `json:"reportingController,omitempty"`
	ReportingInstance   string           `json:"reportingInstance,omitempty"`
	Action              string           `json:"action,omitempty"`
	Reason              string           `json:"reason,omitempty"`
	Regarding           ObjectReference  `json:"regarding"`
	Related             *ObjectReference `json:"related,omitempty"`
	Note                string           `json:"note,omitempty"`
	Type                string           `json:"type,omitempty"`
}

// GroupVersionKind returns events.k8s.io/v1 Event.
func (*Event) GroupVersionKind() GroupVersionKind {
	return GroupVersionKind{Group: "events.k8s.io", Version: "v1", Kind: "Event"}
}

// EventSeries counts repetitions of the same event.
type EventSeries struct {
	Count            int32     `json:"count"`
	LastObservedTime MicroTime `json:"lastObservedTime"`
}

// EventList is a list of Events.
type EventList struct {
	TypeMeta
	Metadata ListMeta `json:"metadata"`
	Items    []Event  `json:"items"`
}

// ItemGroupVersionKind returns events.k8s.io/v1 Event.
func (*EventList) ItemGroupVersionKind() GroupVersionKind { return (*Event)(nil).GroupVersionKind() }
