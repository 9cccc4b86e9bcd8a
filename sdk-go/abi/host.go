// The Host indirection and the pull-model memory protocol built on it: the guest allocates every
// buffer the host writes into, and keeps it referenced until the host call returns.

package abi

import "fmt"

// Host is the set of `wasm_operator` imports, one method per import, with Go slices in place of
// (pointer, length) pairs. The real implementation is active inside a wasip1 module; tests install
// a fake with SetHost.
type Host interface {
	// InputRead copies up to len(buf) bytes of the current call's input into buf and returns how
	// many it copied.
	InputRead(buf []byte) uint32
	// ResultWrite sets the current call's result; the last write wins.
	ResultWrite(result []byte)
	// ResponseRead copies up to len(buf) bytes of the last host call's response into buf and
	// returns how many it copied.
	ResponseRead(buf []byte) uint32
	// KubeRequest performs a KubeRequest (JSON) and returns the length of the HostResponse now
	// waiting for ResponseRead.
	KubeRequest(request []byte) uint32
	// HTTPRequest performs an HTTPRequest (JSON), with the same return convention as KubeRequest.
	HTTPRequest(request []byte) uint32
	// Log emits a LogRecord (JSON).
	Log(record []byte)
}

var current Host = defaultHost()

// SetHost makes h the Host every SDK call goes through and returns the one it replaces, so a test
// can put it back. It is not safe to call while a host call is in progress.
func SetHost(h Host) (previous Host) {
	previous, current = current, h
	return previous
}

// CurrentHost returns the Host in use.
func CurrentHost() Host { return current }

// ReadInput pulls the current call's input, whose length the export received as its parameter.
func ReadInput(length uint32) ([]byte, error) {
	buf := make([]byte, length)
	if length == 0 {
		return buf, nil
	}
	if copied := current.InputRead(buf); copied != length {
		return nil, fmt.Errorf("abi: host announced %d input bytes but copied %d", length, copied)
	}
	return buf, nil
}

// WriteResult sets the current call's result.
func WriteResult(result []byte) { current.ResultWrite(result) }

// WriteLog emits one LogRecord.
func WriteLog(record []byte) { current.Log(record) }

// CallKube performs a Kubernetes request and returns the raw HostResponse bytes.
func CallKube(request []byte) ([]byte, error) {
	return readResponse(current.KubeRequest(request))
}

// CallHTTP performs an outbound HTTP request and returns the raw HostResponse bytes.
func CallHTTP(request []byte) ([]byte, error) {
	return readResponse(current.HTTPRequest(request))
}

// readResponse pulls the response of the host call that just returned its length.
func readResponse(length uint32) ([]byte, error) {
	buf := make([]byte, length)
	if length == 0 {
		return nil, fmt.Errorf("abi: host returned an empty response")
	}
	if copied := current.ResponseRead(buf); copied != length {
		return nil, fmt.Errorf("abi: host announced a %d-byte response but copied %d", length, copied)
	}
	return buf, nil
}
