// Package transcript compares the host calls an operator made with the ones docs/examples.md
// prescribes, the way the conformance suite does: each request as a JSON value, so key order and
// spacing do not matter but every field and every value does.
package transcript

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
)

// Expect fails the test unless got (the raw requests a fake host recorded) are, one for one and in
// order, the JSON values in want.
func Expect(t testing.TB, got [][]byte, want ...string) {
	t.Helper()
	for i := 0; i < len(got) || i < len(want); i++ {
		switch {
		case i >= len(want):
			t.Errorf("request %d was not expected: %s", i, got[i])
		case i >= len(got):
			t.Errorf("request %d is missing: %s", i, want[i])
		default:
			if same, err := sameValue(got[i], []byte(want[i])); err != nil {
				t.Errorf("request %d: %v", i, err)
			} else if !same {
				t.Errorf("request %d\n got  %s\n want %s", i, got[i], canonical(want[i]))
			}
		}
	}
}

func sameValue(a, b []byte) (bool, error) {
	x, err := decode(a)
	if err != nil {
		return false, fmt.Errorf("sent invalid JSON %s: %w", a, err)
	}
	y, err := decode(b)
	if err != nil {
		return false, fmt.Errorf("the test's expectation is invalid JSON %s: %w", b, err)
	}
	// Re-encoding sorts object keys, so equal values give equal bytes.
	xs, _ := json.Marshal(x)
	ys, _ := json.Marshal(y)
	return bytes.Equal(xs, ys), nil
}

// decode keeps numbers as written (json.Number), so 3 and 3.0 stay different, as they would on
// the wire.
func decode(data []byte) (any, error) {
	decoder := json.NewDecoder(bytes.NewReader(data))
	decoder.UseNumber()
	var v any
	err := decoder.Decode(&v)
	return v, err
}

// canonical renders an expectation compactly, for comparison by eye with what was sent.
func canonical(s string) string {
	var out bytes.Buffer
	if err := json.Compact(&out, []byte(s)); err != nil {
		return s
	}
	return out.String()
}
