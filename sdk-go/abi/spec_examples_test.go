// Every JSON example of docs/abi.md read by the Go mirror without loss.

package abi_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"wasm-operator.dev/sdk-go/abi"
)

// newMessage returns a fresh Go value for each message name docs/abi.md uses.
var newMessage = map[string]func() any{
	"InitInput":        func() any { return &abi.InitInput{} },
	"Registration":     func() any { return &abi.Registration{} },
	"WatchSpec":        func() any { return &abi.WatchSpec{} },
	"Watch":            func() any { return &abi.Watch{} },
	"Mapping":          func() any { return &abi.Mapping{} },
	"ReconcileRequest": func() any { return &abi.ReconcileRequest{} },
	"ReconcileResult":  func() any { return &abi.ReconcileResult{} },
	"GuestError":       func() any { return &abi.GuestError{} },
	"KubeRequest":      func() any { return &abi.KubeRequest{} },
	"HttpRequest":      func() any { return &abi.HTTPRequest{} },
	"HttpResponse":     func() any { return &abi.HTTPResponse{} },
	"LogRecord":        func() any { return &abi.LogRecord{} },
	"HostResponse":     func() any { return &abi.HostResponse{} },
	"HostError":        func() any { return &abi.HostError{} },
	"KubeStatus":       func() any { return &abi.Status{} },
}

var exampleBlock = regexp.MustCompile("(?s)```json abi:(\\w+)\n(.*?)```")

// Every JSON example of docs/abi.md must decode into this package's type for it, and encoding
// that value again must keep every field the example set (nulls and empty values may go, and
// defaults may appear). This is what keeps the hand-written Go mirror honest.
func TestSpecExamplesDecodeWithoutLoss(t *testing.T) {
	spec, err := os.ReadFile(filepath.Join("..", "..", "docs", "abi.md"))
	if os.IsNotExist(err) {
		t.Skip("docs/abi.md not found next to sdk-go")
	} else if err != nil {
		t.Fatal(err)
	}
	blocks := exampleBlock.FindAllSubmatch(spec, -1)
	if len(blocks) < 20 {
		t.Fatalf("found only %d examples in docs/abi.md; has the fence format changed?", len(blocks))
	}
	for i, block := range blocks {
		name, example := string(block[1]), block[2]
		t.Run(fmt.Sprintf("%02d-%s", i, name), func(t *testing.T) {
			makeValue, known := newMessage[name]
			if !known {
				t.Fatalf("no Go type for abi:%s", name)
			}
			value := makeValue()
			err := json.Unmarshal(example, value)
			if err != nil {
				t.Fatalf("decoding %s: %v\n%s", name, err, example)
			}
			encoded, err := json.Marshal(value)
			if err != nil {
				t.Fatal(err)
			}
			var want, got any
			if err := json.Unmarshal(example, &want); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(encoded, &got); err != nil {
				t.Fatal(err)
			}
			if path, ok := covers(got, want, name); !ok {
				t.Fatalf("re-encoding lost %s\nexample %s\nencoded %s", path, example, encoded)
			}
		})
	}
}

// covers reports whether got holds every non-empty value of want.
func covers(got, want any, path string) (string, bool) {
	switch w := want.(type) {
	case nil:
		return "", true
	case map[string]any:
		g, _ := got.(map[string]any)
		for key, value := range w {
			if isEmpty(value) {
				continue
			}
			if p, ok := covers(g[key], value, path+"."+key); !ok {
				return p, false
			}
		}
		return "", true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return path, false
		}
		for i := range w {
			if p, ok := covers(g[i], w[i], fmt.Sprintf("%s[%d]", path, i)); !ok {
				return p, false
			}
		}
		return "", true
	default:
		return path, got == want
	}
}

func isEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case map[string]any:
		return len(x) == 0
	case []any:
		return len(x) == 0
	}
	return false
}
