//go:build wasip1

// The real `wasm_operator` imports, for modules built with GOOS=wasip1 (Go) or -target=wasi (TinyGo).

package abi

import (
	"runtime"
	"unsafe"
)

//go:wasmimport wasm_operator input_read
func importInputRead(ptr unsafe.Pointer, length uint32) uint32

//go:wasmimport wasm_operator result_write
func importResultWrite(ptr unsafe.Pointer, length uint32)

//go:wasmimport wasm_operator response_read
func importResponseRead(ptr unsafe.Pointer, length uint32) uint32

//go:wasmimport wasm_operator kube_request
func importKubeRequest(ptr unsafe.Pointer, length uint32) uint32

//go:wasmimport wasm_operator http_request
func importHTTPRequest(ptr unsafe.Pointer, length uint32) uint32

//go:wasmimport wasm_operator log
func importLog(ptr unsafe.Pointer, length uint32)

func defaultHost() Host { return wasmHost{} }

// wasmHost forwards to the imports. Each method keeps its slice alive until the import has
// returned: the host reads or writes that memory during the call, and neither Go's nor TinyGo's
// collector may reclaim it meanwhile (both collectors are non-moving, so the address stays valid).
type wasmHost struct{}

func (wasmHost) InputRead(buf []byte) uint32 {
	n := importInputRead(pointerTo(buf), uint32(len(buf)))
	runtime.KeepAlive(buf)
	return n
}

func (wasmHost) ResultWrite(result []byte) {
	importResultWrite(pointerTo(result), uint32(len(result)))
	runtime.KeepAlive(result)
}

func (wasmHost) ResponseRead(buf []byte) uint32 {
	n := importResponseRead(pointerTo(buf), uint32(len(buf)))
	runtime.KeepAlive(buf)
	return n
}

func (wasmHost) KubeRequest(request []byte) uint32 {
	n := importKubeRequest(pointerTo(request), uint32(len(request)))
	runtime.KeepAlive(request)
	return n
}

func (wasmHost) HTTPRequest(request []byte) uint32 {
	n := importHTTPRequest(pointerTo(request), uint32(len(request)))
	runtime.KeepAlive(request)
	return n
}

func (wasmHost) Log(record []byte) {
	importLog(pointerTo(record), uint32(len(record)))
	runtime.KeepAlive(record)
}

// pointerTo returns the address of the first byte, or nil for an empty slice (the host accepts
// pointer 0 with length 0).
func pointerTo(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}
