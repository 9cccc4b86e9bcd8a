//go:build !wasip1

// The stand-in Host for native builds (unit tests, tools): there is no wasm-operator host to call.

package abi

import (
	"encoding/json"
	"os"
)

func defaultHost() Host { return &absentHost{} }

// absentHost answers every Kubernetes or HTTP request with a transport error that says what is
// wrong, so code under test fails with a readable message instead of a crash, and prints log
// records to standard error so they show up in `go test -v`.
type absentHost struct {
	response []byte
}

func (h *absentHost) InputRead(buf []byte) uint32 { return 0 }

func (h *absentHost) ResultWrite(result []byte) {}

func (h *absentHost) ResponseRead(buf []byte) uint32 { return uint32(copy(buf, h.response)) }

func (h *absentHost) KubeRequest(request []byte) uint32 { return h.fail() }

func (h *absentHost) HTTPRequest(request []byte) uint32 { return h.fail() }

func (h *absentHost) Log(record []byte) {
	os.Stderr.Write(record)
	os.Stderr.Write([]byte{'\n'})
}

func (h *absentHost) fail() uint32 {
	h.response, _ = json.Marshal(HostResponse{Error: &HostError{
		Type:    ErrorTransport,
		Message: "no wasm-operator host: this code runs natively; install a fake with abi.SetHost (see package fakehost)",
	}})
	return uint32(len(h.response))
}
