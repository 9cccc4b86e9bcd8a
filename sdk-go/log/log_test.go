// Log records: levels, key/value fields, loggers carried in a context.

package log_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"wasm-operator.dev/sdk-go/fakehost"
	"wasm-operator.dev/sdk-go/log"
	"wasm-operator.dev/sdk-go/types"
)

// pointerError panics in Error when it is a nil pointer, as many error types would.
type pointerError struct{ msg string }

func (e *pointerError) Error() string { return e.msg }

// stringer is a value whose String method is how it should be logged.
type stringer int

func (stringer) String() string { return "the-name" }

// Field values keep their JSON types; the exact bytes sent to the host show it.
func TestFieldsKeepTheirJSONTypes(t *testing.T) {
	h := fakehost.New()
	t.Cleanup(h.Install())
	log.Info("typed",
		"string", "s",
		"int", 3,
		"big", int64(9007199254740993), // exact: not a float64 on the way
		"uint", uint8(7),
		"float", 0.5,
		"bool", false,
		"nil", nil,
		"error", errors.New("boom"),
		"duration", 1500*time.Millisecond, // a fmt.Stringer
		"stringer", stringer(1),
		"time", types.NewTime(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)), // a json.Marshaler
		"port", types.FromInt(8080),
		"status", types.ConditionTrue, // a named string
		"labels", map[string]string{"app": "web"},
		"list", []int{1, 2},
		"key", types.NamespacedName{Namespace: "ns", Name: "web"},
		"nan", math.NaN(),
		"func", func() {},
		"nilError", (*pointerError)(nil), // must not panic
	)
	want := `{"level":"info","message":"typed","fields":{` +
		`"big":9007199254740993,"bool":false,"duration":"1.5s","error":"boom","float":0.5,"func":"` +
		`PLACEHOLDER","int":3,"key":"ns/web","labels":{"app":"web"},"list":[1,2],"nan":"NaN","nil":null,"nilError":"\u003cnil\u003e",` +
		`"port":8080,"status":"True","string":"s","stringer":"the-name","time":"2025-01-02T03:04:05Z","uint":7}}`
	got := string(h.RawLogs[0])
	// A func has no stable text (fmt prints its address): check it is a string, then compare the rest.
	fn, ok := h.Logs[0].Fields["func"].(string)
	if !ok || fn == "" {
		t.Fatalf("func field %#v", h.Logs[0].Fields["func"])
	}
	if got = strings.Replace(got, fn, "PLACEHOLDER", 1); got != want {
		t.Fatalf("record\n got  %s\n want %s", got, want)
	}
}

// A record must stay within the ABI's 64 KiB: a longer one is an ABI violation that costs the
// instance. Over-long values are cut, keeping the record valid JSON and its text valid UTF-8.
func TestOverLongRecordsStayWithinTheABILimit(t *testing.T) {
	h := fakehost.New()
	t.Cleanup(h.Install())
	huge := strings.Repeat("é", 50000)                        // 100,000 bytes
	log.Info(huge, "body", huge, "items", make([]int, 40000)) // message and fields far over 64 KiB
	many := make([]any, 0, 40000)
	for i := 0; i < 20000; i++ {
		many = append(many, fmt.Sprintf("key%05d", i), "some value")
	}
	log.Info("many fields", many...)

	for i, raw := range h.RawLogs {
		if len(raw) > 64<<10 || !utf8.Valid(raw) {
			t.Fatalf("record %d is %d bytes (valid UTF-8: %v)", i, len(raw), utf8.Valid(raw))
		}
		if h.Logs[i].Level != "info" {
			t.Fatalf("record %d did not decode: %.200s", i, raw)
		}
	}
	first := h.Logs[0]
	if !strings.HasSuffix(first.Message, "…") || !strings.HasPrefix(first.Message, "éé") {
		t.Fatalf("message not cut: %d bytes", len(first.Message))
	}
	if body, _ := first.Fields["body"].(string); len(body) > 4096 || !strings.HasSuffix(body, "…") {
		t.Fatalf("body field: %d bytes", len(body))
	}
	if items, _ := first.Fields["items"].(string); !strings.HasPrefix(items, "[0,0,") {
		t.Fatalf("items field: %.40q", items)
	}
	if _, dropped := h.Logs[1].Fields["fieldsDropped"]; !dropped || h.Logs[1].Message != "many fields" {
		t.Fatalf("record with too many fields: %.200s", h.RawLogs[1])
	}
}

func TestRecordsCarryLevelMessageAndFields(t *testing.T) {
	h := fakehost.New()
	t.Cleanup(h.Install())

	logger := log.WithValues("operator", "webapp")
	logger.Info("reconciled", "replicas", 3, "ready", true)
	logger.Error(errors.New("boom"), "failed", "attempt", 2)
	log.Debug("odd", "dangling")
	log.Warn("w")
	log.Trace("t")

	if len(h.Logs) != 5 {
		t.Fatalf("logs %+v", h.Logs)
	}
	info := h.Logs[0]
	if info.Level != "info" || info.Message != "reconciled" || info.Fields["operator"] != "webapp" ||
		info.Fields["replicas"] != float64(3) || info.Fields["ready"] != true {
		t.Errorf("info %+v", info)
	}
	if e := h.Logs[1]; e.Level != "error" || e.Fields["error"] != "boom" || e.Fields["attempt"] != float64(2) || e.Fields["operator"] != "webapp" {
		t.Errorf("error %+v", e)
	}
	if d := h.Logs[2]; d.Level != "debug" || d.Fields["dangling"] != "(MISSING)" {
		t.Errorf("debug %+v", d)
	}
	if h.Logs[3].Level != "warn" || h.Logs[4].Level != "trace" || h.Logs[4].Fields != nil {
		t.Errorf("warn/trace %+v %+v", h.Logs[3], h.Logs[4])
	}
	if string(h.Logs[3].Message) != "w" {
		t.Errorf("message %q", h.Logs[3].Message)
	}
}

func TestWithValuesDoesNotLeakIntoTheParent(t *testing.T) {
	h := fakehost.New()
	t.Cleanup(h.Install())
	parent := log.WithValues("a", 1)
	_ = parent.WithValues("b", 2)
	parent.Info("x")
	if _, leaked := h.Logs[0].Fields["b"]; leaked || h.Logs[0].Fields["a"] != float64(1) {
		t.Fatalf("fields %v", h.Logs[0].Fields)
	}
}

func TestContext(t *testing.T) {
	h := fakehost.New()
	t.Cleanup(h.Install())
	ctx := log.IntoContext(context.Background(), log.WithValues("name", "web"))
	log.FromContext(ctx).Info("hi")
	log.FromContext(context.Background()).Info("bare")
	if h.Logs[0].Fields["name"] != "web" || h.Logs[1].Fields != nil {
		t.Fatalf("logs %+v", h.Logs)
	}
}
