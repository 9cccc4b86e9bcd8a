// Package fakehost is a Host for native unit tests: it records every request the code under test
// sends and answers with whatever the test decides, so reconcilers and the SDK itself can be
// tested with `go test`, without Wasm and without a cluster.
//
//	h := fakehost.New()
//	defer h.Install()()
//	h.OnKube = func(req abi.KubeRequest) abi.HostResponse {
//		if req.Verb == abi.VerbGet {
//			return fakehost.NotFound(req.Kind, req.Name)
//		}
//		return fakehost.OK(req.Body)
//	}
//	... run the code: call the reconciler directly, or go through the exports as the host
//	// would with h.Init() and h.Reconcile(abi.ReconcileRequest{...}) ...
//	// inspect h.KubeRequests, h.RawKubeRequests, h.Logs, h.Result()
//
// It behaves like the real host where it matters for tests: the guest pulls input and responses
// through the same calls, a new request replaces the unread response, and malformed requests fail
// with an invalidRequest error.
//
// Replay plays a recording of a real run (`wasm-operator run --record DIR`) against the operator's
// Go code: the recorded init and reconciles go in, every host call is answered from the recording,
// and the first request or outcome that differs fails the test with a diff:
//
//	func TestRecordedRun(t *testing.T) { fakehost.Replay(t, "testdata/mirror.jsonl") }
package fakehost

import (
	"encoding/json"
	"fmt"

	"wasm-operator.dev/sdk-go/abi"
	"wasm-operator.dev/sdk-go/internal/exports"
	"wasm-operator.dev/sdk-go/internal/identity"
)

// Host records requests and answers them with OnKube and OnHTTP.
type Host struct {
	// OperatorName and Config are what the code under test sees as operator.Name() and
	// operator.Config while the Host is installed, as if the host had initialised the operator.
	// Server-side apply uses the name as its field manager, Events as their reporting controller.
	OperatorName string
	Config       json.RawMessage

	// Input is what InputRead serves: the current call's input.
	Input []byte
	// Results holds every ResultWrite, in order; the last one is the call's result.
	Results [][]byte

	// OnKube answers Kubernetes requests. Unset, every request fails with a transport error.
	OnKube func(abi.KubeRequest) abi.HostResponse
	// OnHTTP answers HTTP requests. Unset, every request fails with a transport error.
	OnHTTP func(abi.HTTPRequest) abi.HostResponse

	KubeRequests    []abi.KubeRequest // decoded, in order
	RawKubeRequests [][]byte          // the exact bytes the guest sent
	HTTPRequests    []abi.HTTPRequest
	RawHTTPRequests [][]byte
	Logs            []abi.LogRecord
	RawLogs         [][]byte // the exact bytes of each log record

	response []byte
}

// New returns a Host with no requests recorded, for an operator named "test-operator".
func New() *Host { return &Host{OperatorName: "test-operator"} }

// Install makes h the SDK's Host, sets the operator's name and configuration from h, and returns
// a function that restores what was there before:
//
//	defer h.Install()()
func (h *Host) Install() (restore func()) {
	previous := abi.SetHost(h)
	previousName, previousConfig := identity.Name(), identity.Config()
	identity.Set(h.OperatorName, h.Config)
	return func() {
		abi.SetHost(previous)
		identity.Set(previousName, previousConfig)
	}
}

// Init calls the module's wasm_operator_init as the host does, with an InitInput that names
// h.OperatorName and carries h.Config, and returns the export's return code; Result() then holds
// the Registration (code 0) or the GuestError (code 1). The operator under test must have
// registered (package operator linked in and its builder completed, usually in an init function).
func (h *Host) Init() uint32 {
	config := h.Config
	if len(config) == 0 {
		config = json.RawMessage(`{}`)
	}
	return h.call("init", exports.Init, abi.InitInput{ABIVersion: abi.Version, OperatorName: h.OperatorName, Config: config})
}

// Reconcile calls the module's wasm_operator_reconcile with req as the host does and returns the
// export's return code; Result() then holds the ReconcileResult (code 0) or the GuestError (code 1).
// To test what the operator does without its object, leave req.Object nil and set
// req.AbsentReason (abi.AbsentDeleted, abi.AbsentNotSelected or abi.AbsentUnknown), as the host
// does.
func (h *Host) Reconcile(req abi.ReconcileRequest) uint32 {
	return h.call("reconcile", exports.Reconcile, req)
}

func (h *Host) call(name string, export func(uint32) uint32, input any) uint32 {
	if export == nil {
		panic("fakehost: no " + name + " export: the code under test does not link package operator")
	}
	data, err := json.Marshal(input)
	if err != nil {
		panic(fmt.Sprintf("fakehost: the test's %s input does not encode: %v", name, err))
	}
	h.Input = data
	return export(uint32(len(data)))
}

// Result returns the last result written, or nil.
func (h *Host) Result() []byte {
	if len(h.Results) == 0 {
		return nil
	}
	return h.Results[len(h.Results)-1]
}

// InputRead implements abi.Host.
func (h *Host) InputRead(buf []byte) uint32 { return uint32(copy(buf, h.Input)) }

// ResultWrite implements abi.Host; it copies, as the real host does.
func (h *Host) ResultWrite(result []byte) {
	h.Results = append(h.Results, append([]byte(nil), result...))
}

// ResponseRead implements abi.Host.
func (h *Host) ResponseRead(buf []byte) uint32 { return uint32(copy(buf, h.response)) }

// KubeRequest implements abi.Host.
func (h *Host) KubeRequest(request []byte) uint32 {
	h.RawKubeRequests = append(h.RawKubeRequests, append([]byte(nil), request...))
	var req abi.KubeRequest
	if err := json.Unmarshal(request, &req); err != nil {
		return h.respond(Error(abi.ErrorInvalidRequest, "malformed kube request: "+err.Error()))
	}
	h.KubeRequests = append(h.KubeRequests, req)
	if h.OnKube == nil {
		return h.respond(Error(abi.ErrorTransport, "fakehost: no OnKube handler set"))
	}
	return h.respond(h.OnKube(req))
}

// HTTPRequest implements abi.Host.
func (h *Host) HTTPRequest(request []byte) uint32 {
	h.RawHTTPRequests = append(h.RawHTTPRequests, append([]byte(nil), request...))
	var req abi.HTTPRequest
	if err := json.Unmarshal(request, &req); err != nil {
		return h.respond(Error(abi.ErrorInvalidRequest, "malformed http request: "+err.Error()))
	}
	h.HTTPRequests = append(h.HTTPRequests, req)
	if h.OnHTTP == nil {
		return h.respond(Error(abi.ErrorTransport, "fakehost: no OnHTTP handler set"))
	}
	return h.respond(h.OnHTTP(req))
}

// Log implements abi.Host. A record that is not a valid LogRecord is kept with level "invalid"
// and the raw bytes as message, so a test notices.
func (h *Host) Log(record []byte) {
	h.RawLogs = append(h.RawLogs, append([]byte(nil), record...))
	var r abi.LogRecord
	if err := json.Unmarshal(record, &r); err != nil {
		r = abi.LogRecord{Level: "invalid", Message: string(record)}
	}
	h.Logs = append(h.Logs, r)
}

func (h *Host) respond(resp abi.HostResponse) uint32 {
	data, err := json.Marshal(resp)
	if err != nil {
		panic(fmt.Sprintf("fakehost: the test's response does not encode: %v", err))
	}
	h.response = data
	return uint32(len(data))
}

// OK answers with value: a string, json.RawMessage or []byte is taken as JSON text and sent as
// it is; anything else is marshalled.
func OK(value any) abi.HostResponse {
	switch v := value.(type) {
	case string:
		return abi.HostResponse{Ok: json.RawMessage(v)}
	case json.RawMessage:
		return abi.HostResponse{Ok: v}
	case []byte:
		return abi.HostResponse{Ok: json.RawMessage(v)}
	}
	data, err := json.Marshal(value)
	if err != nil {
		panic(fmt.Sprintf("fakehost.OK: %v", err))
	}
	return abi.HostResponse{Ok: data}
}

// Error answers with a host error of the given type (abi.ErrorCapabilityDenied, ...).
func Error(errorType, message string) abi.HostResponse {
	return abi.HostResponse{Error: &abi.HostError{Type: errorType, Message: message}}
}

// APIError answers with a Kubernetes Status error, as the API server would send it.
func APIError(code int32, reason, message string) abi.HostResponse {
	return abi.HostResponse{Error: &abi.HostError{
		Type:    abi.ErrorAPIStatus,
		Message: message,
		Status: &abi.Status{
			Kind: "Status", APIVersion: "v1", Status: "Failure",
			Message: message, Reason: reason, Code: code,
		},
	}}
}

// NotFound answers with the API server's 404 for an object.
func NotFound(kind, name string) abi.HostResponse {
	return APIError(404, "NotFound", fmt.Sprintf("%s %q not found", kind, name))
}

// Conflict answers with the API server's 409 for a stale write.
func Conflict(kind, name string) abi.HostResponse {
	return APIError(409, "Conflict", fmt.Sprintf(
		"Operation cannot be fulfilled on %s %q: the object has been modified; please apply your changes to the latest version and try again", kind, name))
}

// AlreadyExists answers with the API server's 409 for a create of an object that exists.
func AlreadyExists(kind, name string) abi.HostResponse {
	return APIError(409, "AlreadyExists", fmt.Sprintf("%s %q already exists", kind, name))
}

// HTTPOK answers an HTTP request with status, headers and body.
func HTTPOK(status int, headers map[string]string, body string) abi.HostResponse {
	if headers == nil {
		headers = map[string]string{}
	}
	return OK(abi.HTTPResponse{Status: status, Headers: headers, Body: body})
}
