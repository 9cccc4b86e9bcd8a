// The builder's registration, and the init and reconcile exports driven through a fake host.

package operator

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"wasm-operator.dev/sdk-go/abi"
	"wasm-operator.dev/sdk-go/fakehost"
	"wasm-operator.dev/sdk-go/log"
	"wasm-operator.dev/sdk-go/reconcile"
	"wasm-operator.dev/sdk-go/types"
)

// webApp is a CRD type written the way docs/sdk-go.md tells users to.
type webApp struct {
	types.TypeMeta
	types.ObjectMeta `json:"metadata"`
	Spec             struct {
		Replicas int32 `json:"replicas"`
	} `json:"spec"`
}

func (*webApp) GroupVersionKind() types.GroupVersionKind {
	return types.GroupVersionKind{Group: "demo.wasm-operator.dev", Version: "v1alpha1", Kind: "WebApp"}
}

// setup gives each test a fresh registration and a fake host.
func setup(t *testing.T) *fakehost.Host {
	t.Helper()
	registered = nil
	h := fakehost.New()
	restore := h.Install()
	t.Cleanup(func() { restore(); registered = nil })
	return h
}

func runInit(h *fakehost.Host, input string) uint32 {
	h.Input = []byte(input)
	return handleInit(uint32(len(h.Input)))
}

func runReconcile(h *fakehost.Host, input string) uint32 {
	h.Input = []byte(input)
	return handleReconcile(uint32(len(h.Input)))
}

var noop = reconcile.Func(func(context.Context, reconcile.Request) (reconcile.Result, error) {
	return reconcile.Result{}, nil
})

func TestBuilderProducesTheSpecRegistration(t *testing.T) {
	h := setup(t)
	err := New().
		For(&webApp{}, WithPredicates(GenerationChanged)).
		Owns(&types.Deployment{}).
		Watches(&types.ConfigMap{}, EnqueueFromLabels("demo.wasm-operator.dev/webapp", ""), WithLabelSelector("app=x")).
		Complete(noop)
	if err != nil {
		t.Fatal(err)
	}
	if code := runInit(h, `{"abiVersion":1,"operatorName":"webapp","config":{}}`); code != abi.ReturnOK {
		t.Fatalf("init returned %d: %s", code, h.Result())
	}
	want := `{"for":{"apiVersion":"demo.wasm-operator.dev/v1alpha1","kind":"WebApp","predicates":["generationChanged"]},` +
		`"owns":[{"apiVersion":"apps/v1","kind":"Deployment","predicates":[]}],` +
		`"watches":[{"apiVersion":"v1","kind":"ConfigMap","labelSelector":"app=x","predicates":[],"mapping":{"type":"labels","nameLabel":"demo.wasm-operator.dev/webapp"}}]}`
	if got := string(h.Result()); got != want {
		t.Fatalf("registration\n got  %s\n want %s", got, want)
	}
	if Name() != "webapp" {
		t.Fatalf("Name() = %q after init", Name())
	}
}

func TestWatchOptionsAndEventFilter(t *testing.T) {
	h := setup(t)
	New().
		For(types.NewUnstructured("example.com/v1", "Thing"), InNamespace("apps"), WithPredicates(LabelsChanged)).
		Watches(&types.Secret{}, EnqueueOwners()).
		Watches(&types.ConfigMap{}, EnqueueAll()).
		Watches(&types.Service{}, EnqueueFromLabels("owner", "owner-ns")).
		WithEventFilter(GenerationChanged, LabelsChanged).
		Complete(noop)
	if code := runInit(h, `{"abiVersion":1,"operatorName":"t","config":{}}`); code != abi.ReturnOK {
		t.Fatalf("init returned %d: %s", code, h.Result())
	}
	var reg abi.Registration
	if err := json.Unmarshal(h.Result(), &reg); err != nil {
		t.Fatal(err)
	}
	if reg.For.Namespace == nil || *reg.For.Namespace != "apps" {
		t.Errorf("For namespace: %v", reg.For.Namespace)
	}
	if got := reg.For.Predicates; len(got) != 2 || got[0] != LabelsChanged || got[1] != GenerationChanged {
		t.Errorf("For predicates (event filter must not duplicate): %v", got)
	}
	if len(reg.Watches) != 3 {
		t.Fatalf("watches: %+v", reg.Watches)
	}
	if reg.Watches[0].Mapping.Type != abi.MappingOwner || reg.Watches[1].Mapping.Type != abi.MappingAll {
		t.Errorf("mappings: %+v", reg.Watches)
	}
	if m := reg.Watches[2].Mapping; m.NameLabel != "owner" || m.NamespaceLabel == nil || *m.NamespaceLabel != "owner-ns" {
		t.Errorf("labels mapping: %+v", m)
	}
	for _, w := range reg.Watches {
		if len(w.Predicates) != 2 {
			t.Errorf("%s: event filter not applied: %v", w.Kind, w.Predicates)
		}
	}
}

func TestInitFailsWithoutRegistration(t *testing.T) {
	h := setup(t)
	if code := runInit(h, `{"abiVersion":1,"operatorName":"t","config":{}}`); code != abi.ReturnError {
		t.Fatalf("init returned %d", code)
	}
	if !strings.Contains(string(h.Result()), "no operator registered") {
		t.Fatalf("result: %s", h.Result())
	}
}

func TestInitReportsBuilderErrors(t *testing.T) {
	h := setup(t)
	err := New().Owns(types.NewUnstructured("", "")).Complete(noop)
	if err == nil {
		t.Fatal("Complete accepted a registration without For")
	}
	runInit(h, `{"abiVersion":1,"operatorName":"t","config":{}}`)
	var guestErr abi.GuestError
	if err := json.Unmarshal(h.Result(), &guestErr); err != nil {
		t.Fatal(err)
	}
	for _, part := range []string{"no For", "has no apiVersion/kind"} {
		if !strings.Contains(guestErr.Message, part) {
			t.Errorf("error %q does not mention %q", guestErr.Message, part)
		}
	}
}

func TestCompleteTwiceIsAnError(t *testing.T) {
	h := setup(t)
	if err := New().For(&types.ConfigMap{}).Complete(noop); err != nil {
		t.Fatal(err)
	}
	if err := New().For(&types.Secret{}).Complete(noop); err == nil {
		t.Fatal("second Complete succeeded")
	}
	if code := runInit(h, `{"abiVersion":1,"operatorName":"t","config":{}}`); code != abi.ReturnError {
		t.Fatalf("init with two registrations returned %d", code)
	}
}

func TestInitRejectsOtherABIVersions(t *testing.T) {
	h := setup(t)
	New().For(&types.ConfigMap{}).Complete(noop)
	if code := runInit(h, `{"abiVersion":2,"operatorName":"t","config":{}}`); code != abi.ReturnError {
		t.Fatalf("init returned %d", code)
	}
	if !strings.Contains(string(h.Result()), "ABI version 2") {
		t.Fatalf("result: %s", h.Result())
	}
}

func TestOnInitSeesConfigAndCanRefuse(t *testing.T) {
	h := setup(t)
	type config struct {
		Image string `json:"image"`
	}
	var cfg config
	New().For(&types.ConfigMap{}).OnInit(func(ctx context.Context) error {
		cfg = config{}
		if err := Config(&cfg); err != nil {
			return err
		}
		if cfg.Image == "" {
			return errors.New("config.image is required")
		}
		return nil
	}).Complete(noop)
	if code := runInit(h, `{"abiVersion":1,"operatorName":"t","config":{"image":"nginx"}}`); code != abi.ReturnOK || cfg.Image != "nginx" {
		t.Fatalf("init returned %d (%s), image %q", code, h.Result(), cfg.Image)
	}
	if code := runInit(h, `{"abiVersion":1,"operatorName":"t","config":{}}`); code != abi.ReturnError ||
		!strings.Contains(string(h.Result()), "config.image is required") {
		t.Fatalf("init returned %d: %s", code, h.Result())
	}
}

func TestReconcileDecodesTheRequest(t *testing.T) {
	h := setup(t)
	var got reconcile.Request
	var decoded webApp
	New().For(&webApp{}).Complete(reconcile.Func(func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
		got = req
		if found, err := req.DecodeObject(&decoded); !found || err != nil {
			t.Errorf("DecodeObject: %v %v", found, err)
		}
		return reconcile.Result{RequeueAfter: 30 * time.Second}, nil
	}))
	runInit(h, `{"abiVersion":1,"operatorName":"webapp","config":{}}`)
	code := runReconcile(h, `{"apiVersion":"demo.wasm-operator.dev/v1alpha1","kind":"WebApp","namespace":"default","name":"web",`+
		`"object":{"apiVersion":"demo.wasm-operator.dev/v1alpha1","kind":"WebApp","metadata":{"name":"web","namespace":"default","uid":"u1"},"spec":{"replicas":3}},"attempt":2}`)
	if code != abi.ReturnOK {
		t.Fatalf("reconcile returned %d: %s", code, h.Result())
	}
	if got.Namespace != "default" || got.Name != "web" || got.Kind != "WebApp" || got.Attempt != 2 {
		t.Errorf("request: %+v", got)
	}
	if decoded.UID != "u1" || decoded.Spec.Replicas != 3 {
		t.Errorf("decoded object: %+v", decoded)
	}
	if string(h.Result()) != `{"requeueAfterMs":30000}` {
		t.Errorf("result: %s", h.Result())
	}
}

func TestReconcileOfDeletedObject(t *testing.T) {
	h := setup(t)
	var found bool
	New().For(&webApp{}).Complete(reconcile.Func(func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
		found, _ = req.DecodeObject(&webApp{})
		return reconcile.Result{}, nil
	}))
	runInit(h, `{"abiVersion":1,"operatorName":"webapp","config":{}}`)
	code := runReconcile(h, `{"apiVersion":"demo.wasm-operator.dev/v1alpha1","kind":"WebApp","namespace":"default","name":"web","object":null,"attempt":0}`)
	if code != abi.ReturnOK || found {
		t.Fatalf("code %d, found %v", code, found)
	}
	if string(h.Result()) != `{}` {
		t.Errorf("result: %s", h.Result())
	}
}

// The request's absentReason reaches the reconciler, set exactly when the object is missing and
// normalised to one of the three reasons the SDK knows.
func TestReconcileCarriesWhyTheObjectIsAbsent(t *testing.T) {
	const object = `{"apiVersion":"demo.wasm-operator.dev/v1alpha1","kind":"WebApp","metadata":{"name":"web","namespace":"default"}}`
	cases := []struct {
		name        string
		wire        abi.ReconcileRequest
		wantReason  reconcile.AbsentReason
		wantDeleted bool
	}{
		{"deleted", abi.ReconcileRequest{AbsentReason: "deleted"}, reconcile.AbsentDeleted, true},
		{"not selected", abi.ReconcileRequest{AbsentReason: "notSelected"}, reconcile.AbsentNotSelected, false},
		{"unknown", abi.ReconcileRequest{AbsentReason: "unknown"}, reconcile.AbsentUnknown, false},
		{"a reason this SDK does not know", abi.ReconcileRequest{AbsentReason: "evicted"}, reconcile.AbsentUnknown, false},
		{"no reason, from an older host", abi.ReconcileRequest{}, reconcile.AbsentUnknown, false},
		{"object present", abi.ReconcileRequest{Object: json.RawMessage(object)}, "", false},
		{"object present, stray reason", abi.ReconcileRequest{Object: json.RawMessage(object), AbsentReason: "deleted"}, "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := setup(t)
			var got reconcile.Request
			New().For(&webApp{}).Complete(reconcile.Func(func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
				got = req
				return reconcile.Result{}, nil
			}))
			if code := h.Init(); code != abi.ReturnOK {
				t.Fatalf("init: %s", h.Result())
			}
			c.wire.APIVersion, c.wire.Kind, c.wire.Namespace, c.wire.Name = "demo.wasm-operator.dev/v1alpha1", "WebApp", "default", "web"
			if code := h.Reconcile(c.wire); code != abi.ReturnOK {
				t.Fatalf("reconcile returned %d: %s", code, h.Result())
			}
			if got.AbsentReason != c.wantReason || got.ObjectDeleted() != c.wantDeleted {
				t.Fatalf("absent reason %q, deleted %v; want %q, %v", got.AbsentReason, got.ObjectDeleted(), c.wantReason, c.wantDeleted)
			}
		})
	}
}

func TestReconcileResults(t *testing.T) {
	cases := []struct {
		name       string
		result     reconcile.Result
		err        error
		panicValue any
		wantCode   uint32
		wantResult string
	}{
		{"requeue", reconcile.Result{Requeue: true}, nil, nil, abi.ReturnOK, `{"requeue":true}`},
		{"sub-millisecond rounds up", reconcile.Result{RequeueAfter: 1500 * time.Microsecond}, nil, nil, abi.ReturnOK, `{"requeueAfterMs":2}`},
		{"error", reconcile.Result{}, errors.New("boom"), nil, abi.ReturnError, `{"message":"boom"}`},
		{"error with delay", reconcile.Result{RequeueAfter: time.Minute}, errors.New("later"), nil, abi.ReturnError, `{"message":"later","requeueAfterMs":60000}`},
		{"terminal error", reconcile.Result{}, reconcile.TerminalError(errors.New("bad spec")), nil, abi.ReturnOK, `{}`},
		{"panic", reconcile.Result{}, nil, "nil map", abi.ReturnError, `{"message":"panic: nil map"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := setup(t)
			New().For(&types.ConfigMap{}).Complete(reconcile.Func(func(context.Context, reconcile.Request) (reconcile.Result, error) {
				if c.panicValue != nil {
					panic(c.panicValue)
				}
				return c.result, c.err
			}))
			runInit(h, `{"abiVersion":1,"operatorName":"t","config":{}}`)
			code := runReconcile(h, `{"apiVersion":"v1","kind":"ConfigMap","namespace":"ns","name":"x","object":null,"attempt":0}`)
			if code != c.wantCode || string(h.Result()) != c.wantResult {
				t.Fatalf("got %d %s, want %d %s", code, h.Result(), c.wantCode, c.wantResult)
			}
		})
	}
}

func TestReconcileContextCarriesALogger(t *testing.T) {
	h := setup(t)
	New().For(&types.ConfigMap{}).Complete(reconcile.Func(func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
		log.FromContext(ctx).Info("hello")
		return reconcile.Result{}, nil
	}))
	runInit(h, `{"abiVersion":1,"operatorName":"t","config":{}}`)
	runReconcile(h, `{"apiVersion":"v1","kind":"ConfigMap","namespace":"ns","name":"x","object":null,"attempt":0}`)
	if len(h.Logs) != 1 {
		t.Fatalf("logs: %+v", h.Logs)
	}
	if f := h.Logs[0].Fields; f["kind"] != "ConfigMap" || f["namespace"] != "ns" || f["name"] != "x" {
		t.Fatalf("fields: %v", f)
	}
}

// A namespace taken from the configuration is known only after OnInit; the registration sent at
// init must carry it, and a later init with another configuration must carry the new one.
func TestNamespaceFromConfiguration(t *testing.T) {
	h := setup(t)
	var cfg struct {
		Namespace string `json:"namespace"`
	}
	New().
		For(&types.ConfigMap{}, InNamespaceFrom(func() string { return cfg.Namespace })).
		OnInit(func(context.Context) error { return Config(&cfg) }).
		Complete(noop)
	for _, ns := range []string{"ring-1", "ring-2"} {
		if code := runInit(h, `{"abiVersion":1,"operatorName":"t","config":{"namespace":"`+ns+`"}}`); code != abi.ReturnOK {
			t.Fatalf("init returned %d: %s", code, h.Result())
		}
		want := `{"for":{"apiVersion":"v1","kind":"ConfigMap","namespace":"` + ns + `","predicates":[]},"owns":[],"watches":[]}`
		if got := string(h.Result()); got != want {
			t.Fatalf("registration\n got  %s\n want %s", got, want)
		}
	}
	cfg.Namespace = ""
	if code := runInit(h, `{"abiVersion":1,"operatorName":"t","config":{}}`); code != abi.ReturnOK {
		t.Fatalf("init returned %d", code)
	}
	if got := string(h.Result()); got != `{"for":{"apiVersion":"v1","kind":"ConfigMap","predicates":[]},"owns":[],"watches":[]}` {
		t.Fatalf("an empty namespace must mean all namespaces: %s", got)
	}
}

// fakehost drives the same export bodies the module exports, so operator authors can test their
// registration and results natively.
func TestFakeHostDrivesTheExports(t *testing.T) {
	h := setup(t)
	h.OperatorName = "mirror"
	h.Config = json.RawMessage(`{"image":"nginx"}`)
	var seenConfig struct {
		Image string `json:"image"`
	}
	New().For(&types.ConfigMap{}).
		OnInit(func(context.Context) error { return Config(&seenConfig) }).
		Complete(reconcile.Func(func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
			return reconcile.Result{RequeueAfter: time.Second}, nil
		}))
	if code := h.Init(); code != abi.ReturnOK || seenConfig.Image != "nginx" || Name() != "mirror" {
		t.Fatalf("init returned %d (%s), config %+v, name %q", code, h.Result(), seenConfig, Name())
	}
	if want := `{"for":{"apiVersion":"v1","kind":"ConfigMap","predicates":[]},"owns":[],"watches":[]}`; string(h.Result()) != want {
		t.Fatalf("registration %s", h.Result())
	}
	code := h.Reconcile(abi.ReconcileRequest{APIVersion: "v1", Kind: "ConfigMap", Namespace: "ns", Name: "x"})
	if code != abi.ReturnOK || string(h.Result()) != `{"requeueAfterMs":1000}` {
		t.Fatalf("reconcile returned %d: %s", code, h.Result())
	}
}
