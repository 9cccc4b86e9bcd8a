// The probes: one per data.action of a probe ConfigMap, making the same host calls in the same
// order as the Rust guest (conformance/guests/rust-abi/src/probes.rs).

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unsafe"

	"wasm-operator.dev/sdk-go/abi"
	"wasm-operator.dev/sdk-go/hosterr"
)

// fieldManager is the field manager of the guest's server-side applies.
const fieldManager = "abi-conformance"

type findings map[string]string

func run(request abi.ReconcileRequest) ending {
	if len(request.Object) == 0 || string(request.Object) == "null" {
		// A request without its object reports why only for the absence probes (whose names the
		// suite chooses), so the other probes' result objects and deletions make no extra calls.
		if strings.HasPrefix(request.Name, "absence-") {
			reason := request.AbsentReason
			if reason == "" {
				reason = "none"
			}
			probe{name: request.Name}.report(findings{"absentReason": reason})
		}
		return ok(struct{}{})
	}
	var object struct {
		Data map[string]string `json:"data"`
	}
	_ = json.Unmarshal(request.Object, &object)
	p := probe{name: request.Name}
	attempt := request.Attempt
	var found findings
	switch action := object.Data["action"]; {
	case action == "kube":
		found = p.kube()
	case action == "http":
		found = p.http()
	case action == "memory":
		return p.memory()
	case action == "guest-error":
		after := uint64(3600000)
		return guestError(abi.GuestError{Message: fmt.Sprintf("probe %s failed on purpose", request.Name), RequeueAfterMs: &after})
	// Each of these misbehaves on its first attempt and reports on the retry.
	case action == "error-without-result" && attempt == 0:
		return ending{code: 1}
	case action == "no-result" && attempt == 0:
		return ending{code: 0}
	case action == "bad-return" && attempt == 0:
		return ending{result: []byte("{}"), code: 7}
	case action == "bad-json" && attempt == 0:
		kubeRequest([]byte("this is not JSON"))
		return ok(struct{}{})
	case action == "bad-pointer" && attempt == 0:
		importKubeRequestAt(0xfffffff0, 64)
		return ok(struct{}{})
	case action == "trap" && attempt == 0:
		return ok(map[string]uint32{"unreachable": readFar()})
	case action == "error-without-result" || action == "no-result" || action == "bad-return" ||
		action == "bad-json" || action == "bad-pointer" || action == "trap":
		found = findings{"recoveredAtAttempt": strconv.FormatUint(uint64(attempt), 10)}
	default:
		found = findings{"unknownAction": action}
	}
	p.report(found)
	return ok(struct{}{})
}

// farAddress is a variable so that the compiler cannot see the access is out of bounds.
var farAddress uintptr = 0xfffffff0

var base byte

// readFar reads beyond linear memory: the access traps, which is the point.
func readFar() uint32 {
	return *(*uint32)(unsafe.Add(unsafe.Pointer(&base), farAddress-uintptr(unsafe.Pointer(&base))))
}

type probe struct{ name string }

func (p probe) configMap(name string, data any) map[string]any {
	return map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": name, "namespace": current.Namespace}, "data": data}
}

func raw(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

func (p probe) get(name string, cached bool) abi.HostResponse {
	return kube(abi.KubeRequest{Verb: abi.VerbGet, APIVersion: "v1", Kind: "ConfigMap",
		Namespace: current.Namespace, Name: name, Cached: cached})
}

func (p probe) patch(name, patchType string, body any) abi.HostResponse {
	request := abi.KubeRequest{Verb: abi.VerbPatch, APIVersion: "v1", Kind: "ConfigMap",
		Namespace: current.Namespace, Name: name, PatchType: patchType, Body: raw(body)}
	if patchType == abi.PatchApply {
		request.FieldManager, request.Force = fieldManager, true
	}
	return kube(request)
}

// report writes the findings to <probe>-result.
func (p probe) report(found findings) {
	name := p.name + "-result"
	p.patch(name, abi.PatchApply, p.configMap(name, found))
}

// kube exercises every Kubernetes verb, and the errors the API server and the host answer with.
func (p probe) kube() findings {
	found := findings{}
	scratch := p.name + "-scratch"
	found["cachedGet"] = outcome(p.get(p.name, true))
	missing := p.get(p.name+"-missing", false)
	found["getMissing"] = outcome(missing)
	found["getMissingIsNotFound"] = flag(missing, hosterr.IsNotFound)

	create := func() abi.HostResponse {
		return kube(abi.KubeRequest{Verb: abi.VerbCreate, APIVersion: "v1", Kind: "ConfigMap",
			Namespace: current.Namespace, Body: raw(p.configMap(scratch, map[string]string{"step": "created"}))})
	}
	created := create()
	found["create"] = outcome(created)
	again := create()
	found["createAgain"] = outcome(again)
	found["createAgainIsAlreadyExists"] = flag(again, hosterr.IsAlreadyExists)
	found["createAgainIsConflict"] = flag(again, hosterr.IsConflict)

	update := func(step string) abi.HostResponse {
		body := map[string]any{}
		decoder := json.NewDecoder(bytes.NewReader(created.Ok))
		decoder.UseNumber()
		_ = decoder.Decode(&body)
		data, _ := body["data"].(map[string]any)
		if data == nil {
			data = map[string]any{}
		}
		data["step"] = step
		body["data"] = data
		return kube(abi.KubeRequest{Verb: abi.VerbUpdate, APIVersion: "v1", Kind: "ConfigMap",
			Namespace: current.Namespace, Name: scratch, Body: raw(body)})
	}
	found["update"] = outcome(update("updated"))
	// The same resourceVersion again: the object has moved on since.
	stale := update("stale")
	found["staleUpdate"] = outcome(stale)
	found["staleUpdateIsConflict"] = flag(stale, hosterr.IsConflict)

	found["mergePatch"] = outcome(p.patch(scratch, abi.PatchMerge, map[string]any{"data": map[string]string{"merge": "yes"}}))
	jsonPatch := []map[string]string{{"op": "add", "path": "/data/json", "value": "yes"}}
	found["jsonPatch"] = outcome(p.patch(scratch, abi.PatchJSON, jsonPatch))
	found["strategicPatch"] = outcome(p.patch(scratch, abi.PatchStrategic, map[string]any{"data": map[string]string{"strategic": "yes"}}))
	found["applyPatch"] = outcome(p.patch(scratch, abi.PatchApply, p.configMap(scratch, map[string]string{"apply": "yes"})))

	list := func(labelSelector, fieldSelector string, cached bool) abi.HostResponse {
		return kube(abi.KubeRequest{Verb: abi.VerbList, APIVersion: "v1", Kind: "ConfigMap",
			Namespace: current.Namespace, LabelSelector: labelSelector, FieldSelector: fieldSelector, Cached: cached})
	}
	found["listByLabel"] = count(list(probeLabel, "", false))
	found["listByField"] = count(list("", "metadata.name="+scratch, false))
	found["listCached"] = count(list(probeLabel, "", true))

	remove := func() abi.HostResponse {
		return kube(abi.KubeRequest{Verb: abi.VerbDelete, APIVersion: "v1", Kind: "ConfigMap",
			Namespace: current.Namespace, Name: scratch, PropagationPolicy: "Background"})
	}
	found["delete"] = outcome(remove())
	deletedAgain := remove()
	found["deleteAgain"] = outcome(deletedAgain)
	found["deleteAgainIsNotFound"] = flag(deletedAgain, hosterr.IsNotFound)

	found["unknownKind"] = outcome(kube(abi.KubeRequest{Verb: abi.VerbGet, APIVersion: "example.com/v1", Kind: "Nope",
		Namespace: current.Namespace, Name: "x"}))
	return found
}

// http exercises outbound HTTP: any status is an answer; refusals, timeouts, size limits and
// transport failures are errors.
func (p probe) http() findings {
	base := current.HTTP
	get := func(url string, timeoutMs *uint64) abi.HTTPRequest {
		return abi.HTTPRequest{Method: "GET", URL: url, Headers: map[string]string{"x-probe": p.name}, TimeoutMs: timeoutMs}
	}
	found := findings{}
	found["get200"] = httpOutcome(httpCall(get(base+"/fixed/status/200", nil)))
	found["get503"] = httpOutcome(httpCall(get(base+"/fixed/status/503", nil)))
	echo := get(base+"/fixed/echo", nil)
	echo.Method = "POST"
	echo.Headers["content-type"] = "text/plain"
	ping := "ping"
	echo.Body = &ping
	found["echo"] = httpOutcome(httpCall(echo))
	short := uint64(300)
	found["hang"] = httpOutcome(httpCall(get(base+"/fixed/hang", &short)))
	found["large"] = httpOutcome(httpCall(get(base+"/fixed/large/100000", nil)))
	found["denied"] = httpOutcome(httpCall(get("http://denied.invalid/", nil)))
	found["closed"] = httpOutcome(httpCall(get(current.Closed+"/", nil)))
	return found
}

// memory exercises the memory protocol's corner cases, and log at every level.
func (p probe) memory() ending {
	found := findings{}
	small := make([]byte, 16)
	found["pendingAtStart"] = strconv.FormatUint(uint64(responseRead(small)), 10)
	found["inputPrefix"] = string(readInput(4))
	found["inputWhole"] = strconv.FormatBool(uint32(len(readInput(inputLen))) == inputLen)

	request, _ := json.Marshal(abi.KubeRequest{Verb: abi.VerbGet, APIVersion: "v1", Kind: "ConfigMap",
		Namespace: current.Namespace, Name: p.name, Cached: true})
	length := kubeRequest(request)
	three := make([]byte, 3)
	found["partialRead"] = strconv.FormatUint(uint64(responseRead(three)), 10)
	found["partialBytes"] = string(three)
	found["wholeRead"] = strconv.FormatBool(uint32(len(readResponse(length))) == length)
	for _, level := range []string{abi.LevelError, abi.LevelWarn, abi.LevelInfo, abi.LevelDebug, abi.LevelTrace} {
		record, _ := json.Marshal(abi.LogRecord{Level: level, Message: "memory probe", Fields: map[string]any{"probe": p.name}})
		logRecord(record)
	}
	found["logged"] = "5"
	found["readAfterLog"] = strconv.FormatBool(uint32(len(readResponse(length))) == length)
	p.report(found)
	// The last write wins: the first is not even a ReconcileResult.
	writeResult([]byte("not a result"))
	return ok(struct{}{})
}

func kube(request abi.KubeRequest) abi.HostResponse {
	b, _ := json.Marshal(request)
	return parse(readResponse(kubeRequest(b)))
}

func httpCall(request abi.HTTPRequest) abi.HostResponse {
	b, _ := json.Marshal(request)
	return parse(readResponse(httpRequest(b)))
}

func parse(b []byte) abi.HostResponse {
	var response abi.HostResponse
	if err := json.Unmarshal(b, &response); err != nil {
		return abi.HostResponse{Error: &abi.HostError{Type: abi.ErrorInvalidRequest, Message: "unparseable HostResponse: " + err.Error()}}
	}
	return response
}

// outcome is "ok", "apiStatus <code> <reason>", "limitExceeded <limit>" or the error type.
func outcome(response abi.HostResponse) string {
	if response.Error == nil {
		return "ok"
	}
	return errorOutcome(response.Error)
}

func errorOutcome(e *abi.HostError) string {
	switch e.Type {
	case abi.ErrorAPIStatus:
		var code int32
		reason := ""
		if e.Status != nil {
			code, reason = e.Status.Code, e.Status.Reason
		}
		return fmt.Sprintf("apiStatus %d %s", code, reason)
	case abi.ErrorLimitExceeded:
		return "limitExceeded " + e.Limit
	default:
		return e.Type
	}
}

// httpOutcome is "ok <status> <body>" or the error.
func httpOutcome(response abi.HostResponse) string {
	if response.Error != nil {
		return errorOutcome(response.Error)
	}
	var answer abi.HTTPResponse
	if err := json.Unmarshal(response.Ok, &answer); err != nil {
		return "unparseable HttpResponse: " + err.Error()
	}
	return fmt.Sprintf("ok %d %s", answer.Status, answer.Body)
}

func flag(response abi.HostResponse, test func(error) bool) string {
	if response.Error == nil {
		return "false"
	}
	return strconv.FormatBool(test(hosterr.FromWire(response.Error)))
}

func count(response abi.HostResponse) string {
	if response.Error != nil {
		return errorOutcome(response.Error)
	}
	var list struct {
		Items []json.RawMessage `json:"items"`
	}
	_ = json.Unmarshal(response.Ok, &list)
	return strconv.Itoa(len(list.Items))
}
