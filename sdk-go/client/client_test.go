// The exact KubeRequest of every client verb, decoding of answers, patches, and error mapping.

package client_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"wasm-operator.dev/sdk-go/abi"
	"wasm-operator.dev/sdk-go/client"
	"wasm-operator.dev/sdk-go/fakehost"
	"wasm-operator.dev/sdk-go/hosterr"
	"wasm-operator.dev/sdk-go/types"
)

var ctx = context.Background()

// setup installs a fake host that answers every request with answer, and names the operator.
func setup(t *testing.T, answer abi.HostResponse) *fakehost.Host {
	t.Helper()
	h := fakehost.New()
	h.OnKube = func(abi.KubeRequest) abi.HostResponse { return answer }
	h.OperatorName = "webapp"
	t.Cleanup(h.Install())
	return h
}

// sent returns the only request the fake host received, as bytes.
func sent(t *testing.T, h *fakehost.Host) string {
	t.Helper()
	if len(h.RawKubeRequests) != 1 {
		t.Fatalf("expected one request, got %d", len(h.RawKubeRequests))
	}
	return string(h.RawKubeRequests[0])
}

const serverConfigMap = `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","namespace":"ns","uid":"u1","resourceVersion":"7","labels":{"a":"b"}},"data":{"k":"v"}}`

func TestGet(t *testing.T) {
	h := setup(t, fakehost.OK(json.RawMessage(serverConfigMap)))
	// Stale contents must not survive a Get: json.Unmarshal alone would keep them.
	cm := &types.ConfigMap{Data: map[string]string{"stale": "yes"}}
	cm.SetLabel("stale", "yes")
	if err := client.New().Get(ctx, client.ObjectKey{Namespace: "ns", Name: "x"}, cm); err != nil {
		t.Fatal(err)
	}
	if got, want := sent(t, h), `{"verb":"get","apiVersion":"v1","kind":"ConfigMap","namespace":"ns","name":"x"}`; got != want {
		t.Fatalf("request\n got  %s\n want %s", got, want)
	}
	if cm.UID != "u1" || cm.ResourceVersion != "7" || cm.Data["k"] != "v" {
		t.Fatalf("decoded %+v", cm)
	}
	if _, stale := cm.Data["stale"]; stale {
		t.Error("data from before the Get survived")
	}
	if _, stale := cm.Labels["stale"]; stale {
		t.Error("labels from before the Get survived")
	}
}

func TestGetFromCacheAndUnstructured(t *testing.T) {
	h := setup(t, fakehost.OK(json.RawMessage(`{"apiVersion":"example.com/v1","kind":"Thing","metadata":{"name":"t"},"spec":{"size":3}}`)))
	thing := types.NewUnstructured("example.com/v1", "Thing")
	if err := client.New().Get(ctx, client.ObjectKey{Name: "t"}, thing, client.FromCache); err != nil {
		t.Fatal(err)
	}
	if got, want := sent(t, h), `{"verb":"get","apiVersion":"example.com/v1","kind":"Thing","name":"t","cached":true}`; got != want {
		t.Fatalf("request\n got  %s\n want %s", got, want)
	}
	if size, ok := thing.NestedInt64("spec", "size"); !ok || size != 3 {
		t.Fatalf("spec.size = %v %v", size, ok)
	}
}

func TestGetWithoutKindFails(t *testing.T) {
	h := setup(t, fakehost.OK(json.RawMessage(`{}`)))
	err := client.New().Get(ctx, client.ObjectKey{Name: "x"}, &types.Unstructured{})
	if err == nil || !strings.Contains(err.Error(), "no apiVersion/kind") {
		t.Fatalf("err = %v", err)
	}
	if len(h.RawKubeRequests) != 0 {
		t.Fatal("a request without kind reached the host")
	}
}

func TestList(t *testing.T) {
	h := setup(t, fakehost.OK(json.RawMessage(`{"apiVersion":"v1","kind":"ConfigMapList","metadata":{"resourceVersion":"9"},"items":[`+serverConfigMap+`]}`)))
	var list types.ConfigMapList
	err := client.New().List(ctx, &list, client.InNamespace("ns"), client.MatchingLabels{"b": "2", "a": "1"},
		client.MatchingLabelSelector("tier in (web)"), client.MatchingFields{"metadata.name": "x"})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"verb":"list","apiVersion":"v1","kind":"ConfigMap","namespace":"ns","labelSelector":"a=1,b=2,tier in (web)","fieldSelector":"metadata.name=x"}`
	if got := sent(t, h); got != want {
		t.Fatalf("request\n got  %s\n want %s", got, want)
	}
	if len(list.Items) != 1 || list.Items[0].Name != "x" || list.Metadata.ResourceVersion != "9" {
		t.Fatalf("decoded %+v", list)
	}
}

func TestListUnstructured(t *testing.T) {
	h := setup(t, fakehost.OK(json.RawMessage(`{"apiVersion":"apps/v1","kind":"DeploymentList","metadata":{},"items":[{"metadata":{"name":"d"}}]}`)))
	list := types.NewUnstructuredList("apps/v1", "Deployment")
	if err := client.New().List(ctx, list, client.FromCache); err != nil {
		t.Fatal(err)
	}
	if got, want := sent(t, h), `{"verb":"list","apiVersion":"apps/v1","kind":"Deployment","cached":true}`; got != want {
		t.Fatalf("request\n got  %s\n want %s", got, want)
	}
	if len(list.Items) != 1 || list.Items[0].Name != "d" {
		t.Fatalf("decoded %+v", list)
	}
	// The API server omits apiVersion and kind from list items; the list must supply them, or the
	// item could not be written back.
	if gvk := list.Items[0].GroupVersionKind(); gvk.APIVersion() != "apps/v1" || gvk.Kind != "Deployment" {
		t.Fatalf("item kind %v", gvk)
	}
}

func TestCreateFillsKindAndReadsBack(t *testing.T) {
	h := setup(t, fakehost.OK(json.RawMessage(serverConfigMap)))
	cm := &types.ConfigMap{ObjectMeta: types.ObjectMeta{Name: "x", Namespace: "ns"}, Data: map[string]string{"k": "v"}}
	if err := client.New().Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	want := `{"verb":"create","apiVersion":"v1","kind":"ConfigMap","namespace":"ns","body":{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","namespace":"ns"},"data":{"k":"v"}}}`
	if got := sent(t, h); got != want {
		t.Fatalf("request\n got  %s\n want %s", got, want)
	}
	if cm.UID != "u1" {
		t.Fatalf("created object not read back: %+v", cm)
	}
}

func TestUpdateAndStatusUpdate(t *testing.T) {
	h := setup(t, fakehost.OK(json.RawMessage(serverConfigMap)))
	cm := &types.ConfigMap{ObjectMeta: types.ObjectMeta{Name: "x", Namespace: "ns", ResourceVersion: "7"}}
	c := client.New()
	if err := c.Update(ctx, cm); err != nil {
		t.Fatal(err)
	}
	if err := c.Status().Update(ctx, cm); err != nil {
		t.Fatal(err)
	}
	if len(h.KubeRequests) != 2 {
		t.Fatalf("requests: %d", len(h.KubeRequests))
	}
	if r := h.KubeRequests[0]; r.Verb != "update" || r.Subresource != "" || r.Name != "x" {
		t.Errorf("update: %+v", r)
	}
	if strings.Contains(string(h.RawKubeRequests[0]), `"subresource"`) {
		t.Errorf("an update of the object itself must leave subresource out: %s", h.RawKubeRequests[0])
	}
	if r := h.KubeRequests[1]; r.Verb != "update" || r.Subresource != "status" {
		t.Errorf("status update: %+v", r)
	}
	if !strings.Contains(string(h.KubeRequests[0].Body), `"resourceVersion":"7"`) {
		t.Errorf("update body lacks the resourceVersion: %s", h.KubeRequests[0].Body)
	}
}

func TestServerSideApply(t *testing.T) {
	h := setup(t, fakehost.OK(json.RawMessage(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"ns","uid":"d1"},"spec":{"template":{"metadata":{},"spec":{"containers":[]}}}}`)))
	replicas := int32(2)
	d := &types.Deployment{ObjectMeta: types.ObjectMeta{Name: "web", Namespace: "ns"},
		Spec: types.DeploymentSpec{Replicas: &replicas}}
	if err := client.New().Patch(ctx, d, client.Apply, client.ForceOwnership); err != nil {
		t.Fatal(err)
	}
	want := `{"verb":"patch","apiVersion":"apps/v1","kind":"Deployment","namespace":"ns","name":"web","patchType":"apply","fieldManager":"webapp","force":true,` +
		`"body":{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"ns"},"spec":{"replicas":2,"template":{"metadata":{},"spec":{}}}}}`
	if got := sent(t, h); got != want {
		t.Fatalf("request\n got  %s\n want %s", got, want)
	}
	if d.UID != "d1" {
		t.Fatalf("patched object not read back")
	}
}

func TestApplyWithExplicitFieldOwnerOnStatus(t *testing.T) {
	h := setup(t, fakehost.OK(json.RawMessage(serverConfigMap)))
	cm := &types.ConfigMap{ObjectMeta: types.ObjectMeta{Name: "x", Namespace: "ns"}}
	if err := client.New().Status().Patch(ctx, cm, client.Apply, client.FieldOwner("other")); err != nil {
		t.Fatal(err)
	}
	r := h.KubeRequests[0]
	if r.FieldManager != "other" || r.Subresource != "status" || r.Force || r.PatchType != "apply" {
		t.Fatalf("request: %+v", r)
	}
}

func TestMergePatchSendsAFieldOwnerOnlyWhenAsked(t *testing.T) {
	h := setup(t, fakehost.OK(json.RawMessage(serverConfigMap)))
	cm := &types.ConfigMap{ObjectMeta: types.ObjectMeta{Name: "x", Namespace: "ns"}}
	raw := client.RawPatch(client.MergePatchType, []byte(`{"data":{"a":"1"}}`))
	if err := client.New().Patch(ctx, cm, raw, client.FieldOwner("other")); err != nil {
		t.Fatal(err)
	}
	want := `{"verb":"patch","apiVersion":"v1","kind":"ConfigMap","namespace":"ns","name":"x","patchType":"merge","fieldManager":"other","body":{"data":{"a":"1"}}}`
	if got := sent(t, h); got != want {
		t.Fatalf("request\n got  %s\n want %s", got, want)
	}
}

func TestApplyNeedsAFieldManager(t *testing.T) {
	h := fakehost.New()
	h.OperatorName = ""
	t.Cleanup(h.Install())
	err := client.New().Patch(ctx, &types.ConfigMap{ObjectMeta: types.ObjectMeta{Name: "x"}}, client.Apply)
	if err == nil || !strings.Contains(err.Error(), "field manager") || len(h.KubeRequests) != 0 {
		t.Fatalf("err = %v, requests %d", err, len(h.KubeRequests))
	}
}

func TestForceOnlyWithApply(t *testing.T) {
	setup(t, fakehost.OK(json.RawMessage(serverConfigMap)))
	cm := &types.ConfigMap{ObjectMeta: types.ObjectMeta{Name: "x"}}
	err := client.New().Patch(ctx, cm, client.MergeFrom(cm), client.ForceOwnership)
	if err == nil {
		t.Fatal("force accepted on a merge patch")
	}
}

func TestMergeFromSendsOnlyChanges(t *testing.T) {
	h := setup(t, fakehost.OK(json.RawMessage(serverConfigMap)))
	cm := &types.ConfigMap{ObjectMeta: types.ObjectMeta{Name: "x", Namespace: "ns", ResourceVersion: "7",
		Labels: map[string]string{"keep": "1", "drop": "2"}}, Data: map[string]string{"a": "1"}}
	patch := client.MergeFrom(cm)
	delete(cm.Labels, "drop")
	cm.Labels["add"] = "3"
	cm.Data["a"] = "changed"
	if err := client.New().Patch(ctx, cm, patch); err != nil {
		t.Fatal(err)
	}
	r := h.KubeRequests[0]
	if r.PatchType != "merge" || r.FieldManager != "" || r.Force {
		t.Fatalf("request: %+v", r)
	}
	for _, unasked := range []string{`"fieldManager"`, `"force"`} {
		if strings.Contains(string(h.RawKubeRequests[0]), unasked) {
			t.Errorf("a merge patch without options must not send %s: %s", unasked, h.RawKubeRequests[0])
		}
	}
	if got, want := string(r.Body), `{"data":{"a":"changed"},"metadata":{"labels":{"add":"3","drop":null}}}`; got != want {
		t.Fatalf("patch\n got  %s\n want %s", got, want)
	}
}

func TestMergeFromWithOptimisticLock(t *testing.T) {
	h := setup(t, fakehost.OK(json.RawMessage(serverConfigMap)))
	cm := &types.ConfigMap{ObjectMeta: types.ObjectMeta{Name: "x", Namespace: "ns", ResourceVersion: "7"}}
	patch := client.MergeFromWithOptimisticLock(cm)
	cm.SetAnnotation("a", "b")
	if err := client.New().Patch(ctx, cm, patch); err != nil {
		t.Fatal(err)
	}
	if got, want := string(h.KubeRequests[0].Body), `{"metadata":{"annotations":{"a":"b"},"resourceVersion":"7"}}`; got != want {
		t.Fatalf("patch\n got  %s\n want %s", got, want)
	}
}

func TestRawPatches(t *testing.T) {
	h := setup(t, fakehost.OK(json.RawMessage(serverConfigMap)))
	cm := &types.ConfigMap{ObjectMeta: types.ObjectMeta{Name: "x", Namespace: "ns"}}
	c := client.New()
	if err := c.Patch(ctx, cm, client.RawPatch(client.JSONPatchType, []byte(`[{"op":"remove","path":"/data/k"}]`))); err != nil {
		t.Fatal(err)
	}
	if err := c.Patch(ctx, cm, client.RawPatch(client.StrategicMergePatchType, []byte(`{"data":{"k":"v"}}`))); err != nil {
		t.Fatal(err)
	}
	if r := h.KubeRequests[0]; r.PatchType != "json" || string(r.Body) != `[{"op":"remove","path":"/data/k"}]` {
		t.Errorf("json patch: %+v", r)
	}
	if r := h.KubeRequests[1]; r.PatchType != "strategic" {
		t.Errorf("strategic patch: %+v", r)
	}
}

func TestDelete(t *testing.T) {
	h := setup(t, fakehost.OK(json.RawMessage(`{"kind":"Status","status":"Success"}`)))
	cm := &types.ConfigMap{ObjectMeta: types.ObjectMeta{Name: "x", Namespace: "ns"}}
	if err := client.New().Delete(ctx, cm, client.PropagationForeground); err != nil {
		t.Fatal(err)
	}
	if got, want := sent(t, h), `{"verb":"delete","apiVersion":"v1","kind":"ConfigMap","namespace":"ns","name":"x","propagationPolicy":"Foreground"}`; got != want {
		t.Fatalf("request\n got  %s\n want %s", got, want)
	}
}

func TestErrorMapping(t *testing.T) {
	c := client.New()
	cases := []struct {
		name   string
		answer abi.HostResponse
		check  func(error) bool
	}{
		{"404 is not found", fakehost.NotFound("configmaps", "x"), client.IsNotFound},
		{"409 Conflict is a conflict", fakehost.Conflict("configmaps", "x"), client.IsConflict},
		{"409 AlreadyExists", fakehost.APIError(409, "AlreadyExists", "exists"), client.IsAlreadyExists},
		{"fakehost.AlreadyExists", fakehost.AlreadyExists("configmaps", "x"), client.IsAlreadyExists},
		{"fakehost.AlreadyExists is not a conflict", fakehost.AlreadyExists("configmaps", "x"),
			func(err error) bool { return !client.IsConflict(err) }},
		{"403 is forbidden", fakehost.APIError(403, "Forbidden", "no"), client.IsForbidden},
		{"422 is invalid", fakehost.APIError(422, "Invalid", "bad"), client.IsInvalid},
		{"code alone decides when reason is missing", fakehost.APIError(404, "", "gone"), client.IsNotFound},
		{"capabilityDenied", fakehost.Error(abi.ErrorCapabilityDenied, "not granted"), hosterr.IsCapabilityDenied},
		{"timeout", fakehost.Error(abi.ErrorTimeout, "slow"), hosterr.IsTimeout},
		{"transport", fakehost.Error(abi.ErrorTransport, "refused"), hosterr.IsTransport},
		{"invalidRequest", fakehost.Error(abi.ErrorInvalidRequest, "unknown kind"), hosterr.IsInvalidRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			setup(t, tc.answer)
			err := c.Get(ctx, client.ObjectKey{Namespace: "ns", Name: "x"}, &types.ConfigMap{})
			if err == nil || !tc.check(err) {
				t.Fatalf("err %v (%T) not recognised", err, err)
			}
		})
	}
	setup(t, fakehost.Conflict("configmaps", "x"))
	err := c.Get(ctx, client.ObjectKey{Name: "x"}, &types.ConfigMap{})
	if client.IsNotFound(err) || client.IgnoreNotFound(err) == nil {
		t.Fatal("a conflict was taken for not found")
	}
	setup(t, fakehost.NotFound("configmaps", "x"))
	err = c.Get(ctx, client.ObjectKey{Name: "x"}, &types.ConfigMap{})
	if client.IgnoreNotFound(err) != nil || !strings.Contains(err.Error(), `"x" not found`) {
		t.Fatalf("err = %v", err)
	}
}

func TestDoneContextSendsNothing(t *testing.T) {
	h := setup(t, fakehost.OK(json.RawMessage(serverConfigMap)))
	done, cancel := context.WithCancel(context.Background())
	cancel()
	cm := &types.ConfigMap{ObjectMeta: types.ObjectMeta{Name: "x"}}
	c := client.New()
	errs := []error{
		c.Get(done, client.ObjectKey{Name: "x"}, cm), c.List(done, &types.ConfigMapList{}), c.Create(done, cm),
		c.Update(done, cm), c.Patch(done, cm, client.Apply), c.Delete(done, cm), c.Status().Update(done, cm),
	}
	for i, err := range errs {
		if err != context.Canceled {
			t.Errorf("call %d: err = %v", i, err)
		}
	}
	if len(h.KubeRequests) != 0 {
		t.Fatalf("%d requests sent with a cancelled context", len(h.KubeRequests))
	}
}
