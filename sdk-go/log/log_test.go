// Log records: levels, key/value fields, loggers carried in a context.

package log_test

import (
	"context"
	"errors"
	"testing"

	"wasm-operator.dev/sdk-go/fakehost"
	"wasm-operator.dev/sdk-go/log"
)

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
		info.Fields["replicas"] != "3" || info.Fields["ready"] != "true" {
		t.Errorf("info %+v", info)
	}
	if e := h.Logs[1]; e.Level != "error" || e.Fields["error"] != "boom" || e.Fields["attempt"] != "2" || e.Fields["operator"] != "webapp" {
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
	if _, leaked := h.Logs[0].Fields["b"]; leaked || h.Logs[0].Fields["a"] != "1" {
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
