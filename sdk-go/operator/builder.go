// Package operator turns a Go package into a wasm-operator module. Declare, from an init function,
// what the operator watches and which Reconciler handles it, with a builder shaped like
// controller-runtime's:
//
//	func init() {
//		operator.New().
//			For(&v1alpha1.WebApp{}, operator.WithPredicates(operator.GenerationChanged)).
//			Owns(&types.Deployment{}).
//			Watches(&types.ConfigMap{}, operator.EnqueueFromLabels("demo.wasm-operator.dev/webapp", "")).
//			Complete(&WebAppReconciler{Client: client.New()})
//	}
//
// The package also provides the module's exports (wasm_operator_abi_v1, wasm_operator_init and
// wasm_operator_reconcile), so importing it is all a main package needs. The watches themselves run
// in the host; the module is entered only to reconcile.
package operator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"wasm-operator.dev/sdk-go/abi"
	"wasm-operator.dev/sdk-go/internal/identity"
	"wasm-operator.dev/sdk-go/reconcile"
	"wasm-operator.dev/sdk-go/types"
)

// Predicate filters update events of a watch: with predicates set, an update passes when any of
// them holds; creates and deletes always pass. Without predicates every event passes.
type Predicate = abi.Predicate

// The predicates.
const (
	GenerationChanged  = abi.GenerationChanged  // spec changed (metadata.generation moved)
	LabelsChanged      = abi.LabelsChanged      // metadata.labels changed
	AnnotationsChanged = abi.AnnotationsChanged // metadata.annotations changed
)

// WatchOption narrows a For, Owns or Watches. Options are applied when the host initialises the
// operator, after the OnInit hooks, so they may depend on the operator's configuration.
type WatchOption func(*abi.WatchSpec)

// InNamespace watches one namespace instead of all.
func InNamespace(namespace string) WatchOption {
	return func(w *abi.WatchSpec) { w.Namespace = &namespace }
}

// InNamespaceFrom watches the namespace namespace returns, asked at init after the OnInit hooks
// have run: for an operator whose namespace comes from its configuration. "" means all namespaces.
func InNamespaceFrom(namespace func() string) WatchOption {
	return func(w *abi.WatchSpec) {
		if ns := namespace(); ns != "" {
			w.Namespace = &ns
		} else {
			w.Namespace = nil
		}
	}
}

// WithLabelSelector watches only objects matching selector (Kubernetes syntax, e.g. "app=web").
func WithLabelSelector(selector string) WatchOption {
	return func(w *abi.WatchSpec) { w.LabelSelector = &selector }
}

// WithPredicates filters this watch's update events (see Predicate).
func WithPredicates(predicates ...Predicate) WatchOption {
	return func(w *abi.WatchSpec) { w.Predicates = appendNew(w.Predicates, predicates) }
}

// Mapping says which objects of the For kind an event on a Watches object enqueues.
type Mapping = abi.Mapping

// EnqueueOwners enqueues every owner of the event's object whose kind is the For kind, controller
// or not.
func EnqueueOwners() Mapping { return Mapping{Type: abi.MappingOwner} }

// EnqueueFromLabels enqueues the For object named by the event object's label nameLabel. Its
// namespace comes from the label namespaceLabel, or, when that is "", is the event object's own.
func EnqueueFromLabels(nameLabel, namespaceLabel string) Mapping {
	m := Mapping{Type: abi.MappingLabels, NameLabel: nameLabel}
	if namespaceLabel != "" {
		m.NamespaceLabel = &namespaceLabel
	}
	return m
}

// EnqueueAll enqueues every For object the host has cached: for things every object depends on,
// such as a shared settings ConfigMap.
func EnqueueAll() Mapping { return Mapping{Type: abi.MappingAll} }

// Builder collects an operator's registration. Errors (a missing For, an object without a kind)
// are collected and reported by Complete and, so they cannot go unnoticed, by the init export.
type Builder struct {
	forWatch    *declaredWatch
	owns        []declaredWatch
	watches     []declaredWatch
	eventFilter []Predicate
	onInit      []func(ctx context.Context) error
	errs        []error
}

// declaredWatch is one For, Owns or Watches call, kept as declared: its options are applied only
// when the registration is built at init.
type declaredWatch struct {
	gvk     types.GroupVersionKind
	opts    []WatchOption
	mapping Mapping // Watches only
}

// New starts a registration.
func New() *Builder { return &Builder{} }

// For sets the kind this operator reconciles: its events enqueue the object itself.
func (b *Builder) For(obj types.Object, opts ...WatchOption) *Builder {
	if b.forWatch != nil {
		b.errs = append(b.errs, errors.New("For called twice: an operator reconciles one kind"))
		return b
	}
	if w, ok := b.declare("For", obj, opts); ok {
		b.forWatch = &w
	}
	return b
}

// Owns watches a kind this operator creates: an event on such an object enqueues its controller
// owner (see controllerutil.SetControllerReference) when the owner is of the For kind.
func (b *Builder) Owns(obj types.Object, opts ...WatchOption) *Builder {
	if w, ok := b.declare("Owns", obj, opts); ok {
		b.owns = append(b.owns, w)
	}
	return b
}

// Watches watches any other kind; mapping says which For objects its events enqueue.
func (b *Builder) Watches(obj types.Object, mapping Mapping, opts ...WatchOption) *Builder {
	if mapping.Type == abi.MappingLabels && mapping.NameLabel == "" {
		b.errs = append(b.errs, errors.New("Watches: EnqueueFromLabels needs a name label"))
		return b
	}
	if w, ok := b.declare("Watches", obj, opts); ok {
		w.mapping = mapping
		b.watches = append(b.watches, w)
	}
	return b
}

// WithEventFilter adds predicates to every watch of this builder, like controller-runtime's
// builder method of the same name.
func (b *Builder) WithEventFilter(predicates ...Predicate) *Builder {
	b.eventFilter = appendNew(b.eventFilter, predicates)
	return b
}

// OnInit runs fn once when the host initialises the operator, after Name and Config are known and
// before the registration is sent. Return an error to refuse to start (a bad configuration, say):
// the host reports it and does not load the operator.
func (b *Builder) OnInit(fn func(ctx context.Context) error) *Builder {
	b.onInit = append(b.onInit, fn)
	return b
}

// Complete registers r as the operator's reconciler. It returns the builder's errors, which the
// init export also reports to the host, so a module with a broken registration never starts.
// An operator module registers exactly once.
func (b *Builder) Complete(r reconcile.Reconciler) error {
	if registered != nil {
		err := errors.New("operator already registered: call Complete once per module")
		if registered.err == nil {
			registered.err = err
		}
		return err
	}
	err := b.check(r)
	registered = &controller{reconciler: r, registration: b.registration, onInit: b.onInit, err: err}
	return err
}

func (b *Builder) check(r reconcile.Reconciler) error {
	if r == nil {
		b.errs = append(b.errs, errors.New("Complete: the reconciler is nil"))
	}
	if b.forWatch == nil {
		b.errs = append(b.errs, errors.New("no For: say which kind the operator reconciles with For(...)"))
	}
	if len(b.errs) > 0 {
		return fmt.Errorf("operator registration: %w", errors.Join(b.errs...))
	}
	return nil
}

// registration builds what the init export answers: every declared watch with its options and
// the event filter applied. Complete has checked that there is a For.
func (b *Builder) registration() abi.Registration {
	reg := abi.Registration{For: b.spec(*b.forWatch)}
	for _, w := range b.owns {
		reg.Owns = append(reg.Owns, b.spec(w))
	}
	for _, w := range b.watches {
		reg.Watches = append(reg.Watches, abi.Watch{WatchSpec: b.spec(w), Mapping: w.mapping})
	}
	return reg
}

func (b *Builder) spec(w declaredWatch) abi.WatchSpec {
	spec := abi.WatchSpec{APIVersion: w.gvk.APIVersion(), Kind: w.gvk.Kind}
	for _, opt := range w.opts {
		opt(&spec)
	}
	spec.Predicates = appendNew(spec.Predicates, b.eventFilter)
	return spec
}

func (b *Builder) declare(method string, obj types.Object, opts []WatchOption) (declaredWatch, bool) {
	if obj == nil {
		b.errs = append(b.errs, fmt.Errorf("%s: object is nil", method))
		return declaredWatch{}, false
	}
	gvk := obj.GroupVersionKind()
	if gvk.Kind == "" || gvk.Version == "" {
		b.errs = append(b.errs, fmt.Errorf("%s: %T has no apiVersion/kind", method, obj))
		return declaredWatch{}, false
	}
	return declaredWatch{gvk: gvk, opts: opts}, true
}

// appendNew appends the predicates not already present, keeping order.
func appendNew(list, more []Predicate) []Predicate {
	for _, p := range more {
		present := false
		for _, q := range list {
			present = present || p == q
		}
		if !present {
			list = append(list, p)
		}
	}
	return list
}

// Name is the operator's name as the host knows it (its resource's name); "" before init.
func Name() string { return identity.Name() }

// Config decodes the operator's configuration (the config object the host was given for it) into
// into. With no configuration it leaves into unchanged.
func Config(into any) error {
	cfg := identity.Config()
	if len(cfg) == 0 || string(cfg) == "null" {
		return nil
	}
	if err := json.Unmarshal(cfg, into); err != nil {
		return fmt.Errorf("operator config: %w", err)
	}
	return nil
}
