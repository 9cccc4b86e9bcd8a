// The pull-model memory protocol over the Host interface.

package abi_test

import (
	"strings"
	"testing"

	"wasm-operator.dev/sdk-go/abi"
	"wasm-operator.dev/sdk-go/fakehost"
)

func TestReadInputPullsTheAnnouncedBytes(t *testing.T) {
	h := fakehost.New()
	defer h.Install()()
	h.Input = []byte(`{"abiVersion":1}`)
	got, err := abi.ReadInput(uint32(len(h.Input)))
	if err != nil || string(got) != `{"abiVersion":1}` {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestReadInputFailsWhenTheHostCopiesLess(t *testing.T) {
	h := fakehost.New()
	defer h.Install()()
	h.Input = []byte(`{}`)
	if _, err := abi.ReadInput(10); err == nil || !strings.Contains(err.Error(), "copied 2") {
		t.Fatalf("expected a short-copy error, got %v", err)
	}
}

// With no host installed natively, calls fail with a message that says what to do.
func TestNativeDefaultHostExplainsItself(t *testing.T) {
	raw, err := abi.CallKube([]byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"type":"transport"`) || !strings.Contains(string(raw), "fakehost") {
		t.Fatalf("unexpected response %s", raw)
	}
}
