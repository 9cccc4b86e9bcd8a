// Unstructured round trips and helpers, the scalar JSON forms, and the wire shape of typed objects.

package types_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"wasm-operator.dev/sdk-go/types"
)

func TestUnstructuredRoundTripKeepsEverything(t *testing.T) {
	in := `{"apiVersion":"example.com/v1","kind":"Thing","metadata":{"name":"t","namespace":"ns","labels":{"a":"b"}},` +
		`"spec":{"big":9007199254740993,"ratio":0.5,"list":[1,"two",null],"flag":true},"status":{"phase":"Ready"}}`
	var u types.Unstructured
	if err := json.Unmarshal([]byte(in), &u); err != nil {
		t.Fatal(err)
	}
	if u.Name != "t" || u.Labels["a"] != "b" || u.GroupVersionKind().Group != "example.com" {
		t.Fatalf("header %+v", u)
	}
	if big, ok := u.NestedInt64("spec", "big"); !ok || big != 9007199254740993 {
		t.Fatalf("a 2^53+1 integer did not survive: %v", big)
	}
	if phase, ok := u.NestedString("status", "phase"); !ok || phase != "Ready" {
		t.Fatal("status.phase")
	}
	if flag, ok := u.NestedBool("spec", "flag"); !ok || !flag {
		t.Fatal("spec.flag")
	}
	if _, ok := u.NestedInt64("spec", "ratio"); ok {
		t.Fatal("0.5 read as an integer")
	}
	if list, ok := u.NestedSlice("spec", "list"); !ok || len(list) != 3 {
		t.Fatal("spec.list")
	}
	if _, ok := u.NestedString("spec", "missing", "deeper"); ok {
		t.Fatal("missing path found")
	}
	out, err := json.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range []string{`"big":9007199254740993`, `"ratio":0.5`, `"phase":"Ready"`, `"kind":"Thing"`, `"labels":{"a":"b"}`} {
		if !strings.Contains(string(out), part) {
			t.Errorf("%s lost %s", out, part)
		}
	}
}

func TestUnstructuredSetAndRemove(t *testing.T) {
	u := types.NewUnstructured("v1", "ConfigMap")
	if err := u.SetNested("v", "data", "k"); err != nil {
		t.Fatal(err)
	}
	if v, _ := u.NestedString("data", "k"); v != "v" {
		t.Fatal("set")
	}
	if err := u.SetNested("x", "data", "k", "deeper"); err == nil {
		t.Fatal("set through a string succeeded")
	}
	if err := u.SetNested("x", "metadata", "name"); err == nil {
		t.Fatal("set inside metadata succeeded; it must go through ObjectMeta")
	}
	u.RemoveNested("data", "k")
	if _, ok := u.Nested("data", "k"); ok {
		t.Fatal("remove")
	}
	u.RemoveNested("data")
	if _, ok := u.Nested("data"); ok {
		t.Fatal("remove top level")
	}
}

func TestConvertBetweenTypedAndUnstructured(t *testing.T) {
	cm := &types.ConfigMap{ObjectMeta: types.ObjectMeta{Name: "x"}, Data: map[string]string{"k": "v"}}
	cm.SetGroupVersionKind(cm.GroupVersionKind())
	u, err := types.ToUnstructured(cm)
	if err != nil {
		t.Fatal(err)
	}
	if u.Kind != "ConfigMap" || u.Name != "x" {
		t.Fatalf("%+v", u)
	}
	var back types.ConfigMap
	if err := u.DecodeInto(&back); err != nil || back.Data["k"] != "v" {
		t.Fatalf("%v %+v", err, back)
	}
}

func TestTimeForms(t *testing.T) {
	var zero types.Time
	if out, _ := json.Marshal(zero); string(out) != "null" {
		t.Fatalf("zero time %s", out)
	}
	ts := types.NewTime(time.Date(2025, 1, 2, 3, 4, 5, 999, time.FixedZone("x", 3600)))
	if out, _ := json.Marshal(ts); string(out) != `"2025-01-02T02:04:05Z"` {
		t.Fatalf("time %s", out)
	}
	var parsed types.Time
	if err := json.Unmarshal([]byte(`"2025-01-02T02:04:05Z"`), &parsed); err != nil || !parsed.Equal(ts.Time) {
		t.Fatalf("parse %v %v", parsed, err)
	}
	if err := json.Unmarshal([]byte(`null`), &parsed); err != nil || !parsed.IsZero() {
		t.Fatal("null")
	}
	micro := types.NewMicroTime(time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.UTC))
	if out, _ := json.Marshal(micro); string(out) != `"2025-01-02T03:04:05.123456Z"` {
		t.Fatalf("micro %s", out)
	}
}

func TestIntOrString(t *testing.T) {
	for _, c := range []struct {
		v    types.IntOrString
		json string
	}{{types.FromInt(8080), `8080`}, {types.FromString("http"), `"http"`}} {
		out, _ := json.Marshal(c.v)
		if string(out) != c.json {
			t.Errorf("%v marshals as %s", c.v, out)
		}
		var back types.IntOrString
		if err := json.Unmarshal(out, &back); err != nil || back != c.v {
			t.Errorf("round trip of %s: %+v %v", out, back, err)
		}
	}
}

func TestDeploymentForApplyCarriesOnlyWhatIsSet(t *testing.T) {
	replicas := int32(2)
	d := types.Deployment{ObjectMeta: types.ObjectMeta{Name: "web"}, Spec: types.DeploymentSpec{
		Replicas: &replicas,
		Selector: &types.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
		Template: types.PodTemplateSpec{
			ObjectMeta: types.ObjectMeta{Labels: map[string]string{"app": "web"}},
			Spec: types.PodSpec{Containers: []types.Container{{Name: "web", Image: "nginx:1.27",
				Ports: []types.ContainerPort{{ContainerPort: 80}}}}},
		},
	}}
	out, _ := json.Marshal(d)
	want := `{"metadata":{"name":"web"},"spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},` +
		`"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"web","image":"nginx:1.27","ports":[{"containerPort":80}]}]}}}}`
	if string(out) != want {
		t.Fatalf("got  %s\nwant %s", out, want)
	}
}

func TestSelectors(t *testing.T) {
	s := types.LabelSelector{
		MatchLabels: map[string]string{"b": "2", "a": "1"},
		MatchExpressions: []types.LabelSelectorRequirement{
			{Key: "tier", Operator: "In", Values: []string{"web", "api"}},
			{Key: "env", Operator: "NotIn", Values: []string{"dev"}},
			{Key: "owned", Operator: "Exists"},
			{Key: "legacy", Operator: "DoesNotExist"},
		},
	}
	if got := s.String(); got != "a=1,b=2,tier in (web,api),env notin (dev),owned,!legacy" {
		t.Fatalf("selector %q", got)
	}
}

func TestGroupVersionKind(t *testing.T) {
	if g := types.GVK("apps/v1", "Deployment"); g.Group != "apps" || g.Version != "v1" || g.APIVersion() != "apps/v1" {
		t.Fatalf("%+v", g)
	}
	if g := types.GVK("v1", "Pod"); g.Group != "" || g.APIVersion() != "v1" {
		t.Fatalf("%+v", g)
	}
	if types.KeyOf(&types.ConfigMap{ObjectMeta: types.ObjectMeta{Namespace: "ns", Name: "x"}}).String() != "ns/x" {
		t.Fatal("KeyOf")
	}
}
