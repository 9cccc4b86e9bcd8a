// Command go-abi is the ABI-level conformance guest in Go, the twin of
// conformance/guests/rust-abi: both make exactly the host calls docs/conformance.md ("The ABI
// guests") lists, so the suite can compare their transcripts. It is written against the raw
// `wasm_operator` imports and exports, not the SDK's entry points, since some probes break the ABI
// on purpose; requests and responses use the SDK's message types (package abi), so the suite also
// checks that they mirror docs/abi.md exactly.
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o go-abi.wasm .
package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"unsafe"

	"wasm-operator.dev/sdk-go/abi"
)

// probeLabel selects the probe ConfigMaps the guest reconciles.
const probeLabel = "conformance.wasm-operator.dev/probe=true"

// settings is what init was told.
type settings struct {
	FailInit  string `json:"failInit"`
	Namespace string `json:"namespace"`
	HTTP      string `json:"http"`
	Closed    string `json:"closed"`
}

var (
	current  settings
	inputLen uint32
)

//go:wasmimport wasm_operator input_read
func importInputRead(ptr unsafe.Pointer, length uint32) uint32

//go:wasmimport wasm_operator result_write
func importResultWrite(ptr unsafe.Pointer, length uint32)

//go:wasmimport wasm_operator response_read
func importResponseRead(ptr unsafe.Pointer, length uint32) uint32

//go:wasmimport wasm_operator kube_request
func importKubeRequest(ptr unsafe.Pointer, length uint32) uint32

// importKubeRequestAt is kube_request with a plain address, for the probe that passes a bad one.
//
//go:wasmimport wasm_operator kube_request
func importKubeRequestAt(ptr uint32, length uint32) uint32

//go:wasmimport wasm_operator http_request
func importHTTPRequest(ptr unsafe.Pointer, length uint32) uint32

//go:wasmimport wasm_operator log
func importLog(ptr unsafe.Pointer, length uint32)

func pointer(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}

// readInput reads up to n bytes of the current call's input.
func readInput(n uint32) []byte {
	buf := make([]byte, n)
	copied := importInputRead(pointer(buf), n)
	runtime.KeepAlive(buf)
	return buf[:copied]
}

func writeResult(b []byte) {
	importResultWrite(pointer(b), uint32(len(b)))
	runtime.KeepAlive(b)
}

func responseRead(buf []byte) uint32 {
	n := importResponseRead(pointer(buf), uint32(len(buf)))
	runtime.KeepAlive(buf)
	return n
}

func readResponse(n uint32) []byte {
	buf := make([]byte, n)
	return buf[:responseRead(buf)]
}

func kubeRequest(b []byte) uint32 {
	n := importKubeRequest(pointer(b), uint32(len(b)))
	runtime.KeepAlive(b)
	return n
}

func httpRequest(b []byte) uint32 {
	n := importHTTPRequest(pointer(b), uint32(len(b)))
	runtime.KeepAlive(b)
	return n
}

func logRecord(b []byte) {
	importLog(pointer(b), uint32(len(b)))
	runtime.KeepAlive(b)
}

// ending is how an export ends: its result (nil: none written) and return code.
type ending struct {
	result []byte
	code   int32
}

func ok(result any) ending {
	b, _ := json.Marshal(result)
	return ending{result: b, code: int32(abi.ReturnOK)}
}

func guestError(e abi.GuestError) ending {
	b, _ := json.Marshal(e)
	return ending{result: b, code: int32(abi.ReturnError)}
}

func finish(e ending) int32 {
	if e.result != nil {
		writeResult(e.result)
	}
	return e.code
}

//go:wasmexport wasm_operator_abi_v1
func abiV1() {}

//go:wasmexport wasm_operator_init
func initExport(n uint32) int32 {
	inputLen = n
	var input abi.InitInput
	if err := json.Unmarshal(readInput(n), &input); err != nil {
		return finish(guestError(abi.GuestError{Message: fmt.Sprintf("bad InitInput: %v", err)}))
	}
	if err := json.Unmarshal(input.Config, &current); err != nil {
		return finish(guestError(abi.GuestError{Message: fmt.Sprintf("bad config: %v", err)}))
	}
	if current.FailInit != "" {
		return finish(guestError(abi.GuestError{Message: "init refused on purpose: " + current.FailInit}))
	}
	namespace, selector := current.Namespace, probeLabel
	return finish(ok(abi.Registration{For: abi.WatchSpec{
		APIVersion: "v1", Kind: "ConfigMap", Namespace: &namespace, LabelSelector: &selector,
	}}))
}

//go:wasmexport wasm_operator_reconcile
func reconcileExport(n uint32) int32 {
	inputLen = n
	var request abi.ReconcileRequest
	if err := json.Unmarshal(readInput(n), &request); err != nil {
		return finish(guestError(abi.GuestError{Message: fmt.Sprintf("bad ReconcileRequest: %v", err)}))
	}
	return finish(run(request))
}

// main never runs in a reactor module.
func main() {}
