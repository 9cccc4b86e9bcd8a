// Package events records Kubernetes Events (events.k8s.io/v1) about objects, the ones
// `kubectl describe` and `kubectl events` show, with the signature of client-go's
// events.EventRecorder:
//
//	recorder := events.NewRecorder(c)
//	recorder.Eventf(webapp, nil, types.EventTypeNormal, "Scaled", "Scale", "scaled to %d", n)
//
// Repeats of an event (same object, type, reason, action and note) within ten minutes do not
// create new Event objects: the first one's series count and lastObservedTime are patched instead,
// as client-go does. The recorder remembers recent events in linear memory, which survives swap.
// Recording is best effort: a failure is logged, never returned, so it cannot fail a reconcile.
package events

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"wasm-operator.dev/sdk-go/client"
	"wasm-operator.dev/sdk-go/internal/identity"
	"wasm-operator.dev/sdk-go/log"
	"wasm-operator.dev/sdk-go/types"
)

// seriesWindow is how long a repeat counts as part of the same series.
const seriesWindow = 10 * time.Minute

// maxRemembered bounds the memory the series bookkeeping may use.
const maxRemembered = 256

// Recorder creates Events through a client. Make one with NewRecorder.
type Recorder struct {
	client client.Client
	now    func() time.Time
	recent map[seriesKey]*series
}

type seriesKey struct {
	regardingUID, eventType, reason, action, note string
}

type series struct {
	name, namespace string
	count           int32
	lastObserved    time.Time
}

// NewRecorder returns a Recorder writing with c. The reporting controller is
// "wasm-operator.dev/<operator name>".
func NewRecorder(c client.Client) *Recorder {
	return &Recorder{client: c, now: time.Now, recent: map[seriesKey]*series{}}
}

// Eventf records an event about regarding. related is an optional second object involved (nil for
// none). eventType is types.EventTypeNormal or types.EventTypeWarning; reason is a short
// UpperCamelCase word saying why ("ScalingReplicaSet"), action what was done ("Scale"); note is a
// human-readable sentence, formatted with args.
func (r *Recorder) Eventf(regarding, related types.Object, eventType, reason, action, note string, args ...any) {
	if len(args) > 0 {
		note = fmt.Sprintf(note, args...)
	}
	if len(note) > 1024 { // the API server's limit for note
		note = note[:1021] + "..."
	}
	ctx := context.Background()
	now := time.Now()
	if r.now != nil {
		now = r.now()
	}
	regardingMeta := regarding.GetObjectMeta()
	key := seriesKey{regardingMeta.UID, eventType, reason, action, note}
	if s := r.recent[key]; s != nil && now.Sub(s.lastObserved) < seriesWindow {
		if err := r.bumpSeries(ctx, s, now); err == nil {
			return
		} else if !client.IsNotFound(err) {
			log.Warn("could not update event series", "event", s.name, "error", err)
			return
		}
		// The Event was deleted (they expire after an hour by default): start a new one.
	}

	namespace := regardingMeta.Namespace
	if namespace == "" {
		namespace = "default" // events about cluster-scoped objects live in "default", as client-go does
	}
	event := &types.Event{
		ObjectMeta: types.ObjectMeta{
			// The naming scheme of client-go: unique per call, readable next to the object.
			Name:      regardingMeta.Name + "." + strconv.FormatInt(now.UnixNano(), 16),
			Namespace: namespace,
		},
		EventTime:           types.NewMicroTime(now),
		ReportingController: "wasm-operator.dev/" + identity.Name(),
		ReportingInstance:   identity.Name(),
		Action:              action,
		Reason:              reason,
		Regarding:           types.ReferenceTo(regarding),
		Note:                note,
		Type:                eventType,
	}
	if related != nil {
		ref := types.ReferenceTo(related)
		event.Related = &ref
	}
	if err := r.client.Create(ctx, event); err != nil {
		log.Warn("could not record event", "reason", reason, "regarding", regardingMeta.Name, "error", err)
		return
	}
	r.remember(key, &series{name: event.Name, namespace: event.Namespace, count: 1, lastObserved: now})
}

// Event records an event whose note needs no formatting.
func (r *Recorder) Event(regarding types.Object, eventType, reason, action, note string) {
	r.Eventf(regarding, nil, eventType, reason, action, note)
}

func (r *Recorder) bumpSeries(ctx context.Context, s *series, now time.Time) error {
	count := s.count + 1
	patch, err := json.Marshal(map[string]any{"series": types.EventSeries{Count: count, LastObservedTime: types.NewMicroTime(now)}})
	if err != nil {
		return err
	}
	event := &types.Event{ObjectMeta: types.ObjectMeta{Name: s.name, Namespace: s.namespace}}
	if err := r.client.Patch(ctx, event, client.RawPatch(client.MergePatchType, patch)); err != nil {
		return err
	}
	s.count, s.lastObserved = count, now
	return nil
}

// remember records a new series, first dropping expired ones, and all of them if the map is
// still full, so memory stays bounded whatever the operator does.
func (r *Recorder) remember(key seriesKey, s *series) {
	if r.recent == nil {
		r.recent = map[seriesKey]*series{}
	}
	if len(r.recent) >= maxRemembered {
		for k, v := range r.recent {
			if s.lastObserved.Sub(v.lastObserved) >= seriesWindow {
				delete(r.recent, k)
			}
		}
		if len(r.recent) >= maxRemembered {
			r.recent = map[seriesKey]*series{}
		}
	}
	r.recent[key] = s
}
