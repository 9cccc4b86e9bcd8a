// Package events records Kubernetes Events (events.k8s.io/v1) about objects, the ones
// `kubectl describe` and `kubectl events` show, with the signature of client-go's
// events.EventRecorder:
//
//	recorder := events.NewRecorder(c)
//	recorder.Eventf(webapp, nil, types.EventTypeNormal, "Scaled", "Scale", "scaled to %d", n)
//
// Every call creates exactly one Event, named by the API server from "<object name>-": there is no
// aggregation of repeats into a series. That keeps the recorder stateless, so nothing about events
// has to survive a swap, and makes the requests an operator sends a plain function of what it saw.
// Recording is best effort: a failure is logged, never returned, so it cannot fail a reconcile.
package events

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"wasm-operator.dev/sdk-go/client"
	"wasm-operator.dev/sdk-go/internal/identity"
	"wasm-operator.dev/sdk-go/log"
	"wasm-operator.dev/sdk-go/types"
)

// maxNoteLength is the API server's limit for an Event's note.
const maxNoteLength = 1024

// Recorder creates Events through a client. Make one with NewRecorder.
type Recorder struct {
	client     client.Client
	controller string // "" means "wasm-operator.dev/<operator name>", decided when an event is made
	instance   string // "" means the operator's name
	now        func() time.Time
}

// Option configures a Recorder.
type Option func(*Recorder)

// ReportingController sets the Events' reportingController, e.g. "example.com/my-operator". The
// default is "wasm-operator.dev/<operator name>".
func ReportingController(name string) Option { return func(r *Recorder) { r.controller = name } }

// ReportingInstance sets the Events' reportingInstance. The default is the operator's name.
func ReportingInstance(name string) Option { return func(r *Recorder) { r.instance = name } }

// WithClock sets where eventTime comes from; tests use it to get exact timestamps.
func WithClock(now func() time.Time) Option { return func(r *Recorder) { r.now = now } }

// NewRecorder returns a Recorder writing with c. It may be made before the operator is
// initialised (in an init function): the operator's name is looked up when an event is recorded.
func NewRecorder(c client.Client, opts ...Option) *Recorder {
	r := &Recorder{client: c, now: time.Now}
	for _, opt := range opts {
		opt(r)
	}
	return r
}

// Eventf records an event about regarding. related is an optional second object involved (nil for
// none). eventType is types.EventTypeNormal or types.EventTypeWarning; reason is a short
// UpperCamelCase word saying why ("ScalingReplicaSet"), action what was done ("Scale"); note is a
// human-readable sentence, formatted with args.
func (r *Recorder) Eventf(regarding, related types.Object, eventType, reason, action, note string, args ...any) {
	if len(args) > 0 {
		note = fmt.Sprintf(note, args...)
	}
	event := r.newEvent(regarding, eventType, reason, action, truncateNote(note))
	if related != nil {
		ref := referenceTo(related)
		event.Related = &ref
	}
	if err := r.client.Create(context.Background(), event); err != nil {
		log.Warn("could not record event", "reason", reason, "regarding", regarding.GetObjectMeta().Name, "error", err)
	}
}

// Event records an event whose note needs no formatting.
func (r *Recorder) Event(regarding types.Object, eventType, reason, action, note string) {
	r.Eventf(regarding, nil, eventType, reason, action, note)
}

// truncateNote makes note fit the API server's limit: at most maxNoteLength bytes of valid UTF-8.
// A longer note is cut on a character boundary and ends in "...". Cutting at a byte offset could
// split a multi-byte character; encoding/json would then write the stray bytes as U+FFFD (3 bytes
// each), making the note longer than the limit, and the API server would refuse the Event. Invalid
// UTF-8 in the note itself is replaced first for the same reason.
func truncateNote(note string) string {
	note = strings.ToValidUTF8(note, "\uFFFD")
	if len(note) <= maxNoteLength {
		return note
	}
	cut := maxNoteLength - len("...")
	for cut > 0 && !utf8.RuneStart(note[cut]) {
		cut-- // note[cut] continues the character before it: cut before that character instead
	}
	return note[:cut] + "..."
}

func (r *Recorder) newEvent(regarding types.Object, eventType, reason, action, note string) *types.Event {
	meta := regarding.GetObjectMeta()
	namespace := meta.Namespace
	if namespace == "" {
		namespace = "default" // events about cluster-scoped objects live in "default", as client-go does
	}
	now := time.Now
	if r.now != nil {
		now = r.now
	}
	return &types.Event{
		// The API server appends a random suffix to generateName, so every call is a new Event.
		ObjectMeta:          types.ObjectMeta{GenerateName: meta.Name + "-", Namespace: namespace},
		EventTime:           types.NewMicroTime(now()),
		ReportingController: r.reportingController(),
		ReportingInstance:   r.reportingInstance(),
		Action:              action,
		Reason:              reason,
		Regarding:           referenceTo(regarding),
		Note:                note,
		Type:                eventType,
	}
}

func (r *Recorder) reportingController() string {
	if r.controller != "" {
		return r.controller
	}
	return "wasm-operator.dev/" + identity.Name()
}

func (r *Recorder) reportingInstance() string {
	if r.instance != "" {
		return r.instance
	}
	return identity.Name()
}

// referenceTo identifies obj by apiVersion, kind, namespace, name and uid. The resourceVersion is
// left out on purpose: an Event is about the object, not about one revision of it.
func referenceTo(obj types.Object) types.ObjectReference {
	meta := obj.GetObjectMeta()
	gvk := obj.GroupVersionKind()
	return types.ObjectReference{
		APIVersion: gvk.APIVersion(), Kind: gvk.Kind, Namespace: meta.Namespace, Name: meta.Name, UID: meta.UID,
	}
}
