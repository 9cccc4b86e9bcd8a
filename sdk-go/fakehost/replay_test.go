package fakehost_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"wasm-operator.dev/sdk-go/client"
	"wasm-operator.dev/sdk-go/events"
	"wasm-operator.dev/sdk-go/fakehost"
	"wasm-operator.dev/sdk-go/httpclient"
	"wasm-operator.dev/sdk-go/operator"
	"wasm-operator.dev/sdk-go/reconcile"
	"wasm-operator.dev/sdk-go/types"
)

// The operator the tapes in testdata were recorded from: it mirrors each ConfigMap into
// NAME-mirror, records an Event (whose eventTime differs on every run) and notifies the webhook
// of its configuration. At init it reads an optional settings ConfigMap; a ConfigMap whose data
// has "fail" fails its reconcile with that text.

type mirrorConfig struct {
	Webhook string `json:"webhook"`
}

var config mirrorConfig

type mirror struct {
	client   client.Client
	recorder *events.Recorder
}

func (m *mirror) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var source types.ConfigMap
	if err := m.client.Get(ctx, req.NamespacedName, &source); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if reason := source.Data["fail"]; reason != "" {
		return reconcile.Result{}, errors.New(reason)
	}
	copied := &types.ConfigMap{Data: source.Data}
	copied.Namespace, copied.Name = source.Namespace, source.Name+"-mirror"
	if err := client.IgnoreAlreadyExists(m.client.Create(ctx, copied)); err != nil {
		return reconcile.Result{}, err
	}
	m.recorder.Eventf(&source, nil, types.EventTypeNormal, "Mirrored", "Mirror", "mirrored to %s", copied.Name)
	if config.Webhook != "" {
		if _, err := httpclient.Get(ctx, config.Webhook+"?name="+source.Name); err != nil {
			return reconcile.Result{}, fmt.Errorf("notifying the webhook: %w", err)
		}
	}
	return reconcile.Result{RequeueAfter: 30 * time.Second}, nil
}

func init() {
	c := client.New()
	operator.New().
		For(&types.ConfigMap{}).
		Owns(&types.ConfigMap{}).
		OnInit(func(ctx context.Context) error {
			config = mirrorConfig{}
			if err := operator.Config(&config); err != nil {
				return err
			}
			var settings types.ConfigMap
			return client.IgnoreNotFound(c.Get(ctx, client.ObjectKey{Namespace: "ops", Name: "mirror-settings"}, &settings))
		}).
		Complete(&mirror{client: c, recorder: events.NewRecorder(c)})
}

// fakeT records what a failing replay reports instead of failing the test.
type fakeT struct {
	testing.TB
	failures []string
}

func (f *fakeT) record(failure string)             { f.failures = append(f.failures, failure) }
func (f *fakeT) Helper()                           {}
func (f *fakeT) Fatalf(format string, args ...any) { f.record(fmt.Sprintf(format, args...)) }
func (f *fakeT) Errorf(format string, args ...any) { f.record(fmt.Sprintf(format, args...)) }
func (f *fakeT) Fatal(args ...any)                 { f.record(fmt.Sprint(args...)) }
func (f *fakeT) Error(args ...any)                 { f.record(fmt.Sprint(args...)) }
func (f *fakeT) FailNow()                          { f.record("FailNow") }

// replayFailure replays the tape at path and returns the one failure it must report.
func replayFailure(t *testing.T, path string) string {
	t.Helper()
	ft := &fakeT{TB: t}
	fakehost.Replay(ft, path)
	if testing.Verbose() {
		t.Logf("the replay reports:\n%s", strings.Join(ft.failures, "\n"))
	}
	if len(ft.failures) != 1 {
		t.Fatalf("expected one failure, got %d: %q", len(ft.failures), ft.failures)
	}
	return ft.failures[0]
}

// variant writes testdata/mirror.jsonl with each old string replaced by the new one after it
// (each must occur exactly once) and returns its path.
func variant(t *testing.T, replacements ...string) string {
	t.Helper()
	data, err := os.ReadFile("testdata/mirror.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for i := 0; i+1 < len(replacements); i += 2 {
		if n := strings.Count(text, replacements[i]); n != 1 {
			t.Fatalf("%q occurs %d times in the tape", replacements[i], n)
		}
		text = strings.Replace(text, replacements[i], replacements[i+1], 1)
	}
	path := filepath.Join(t.TempDir(), "mirror.jsonl")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func assertContains(t *testing.T, text string, parts ...string) {
	t.Helper()
	for _, part := range parts {
		if !strings.Contains(text, part) {
			t.Errorf("the failure lacks %q:\n%s", part, text)
		}
	}
}

func TestTheRecordingReplays(t *testing.T) {
	h := fakehost.Replay(t, "testdata/mirror.jsonl")
	// init's get, then get, create, Event and webhook; a get for the deleted ConfigMap; a get for
	// the failing one.
	if len(h.KubeRequests) != 6 || len(h.HTTPRequests) != 1 {
		t.Fatalf("%d Kubernetes and %d HTTP requests", len(h.KubeRequests), len(h.HTTPRequests))
	}
	if h.OperatorName != "mirror" {
		t.Errorf("operator name %q", h.OperatorName)
	}
}

func TestADifferentRequestFailsWithADiff(t *testing.T) {
	// The recording created the mirror under another name.
	failure := replayFailure(t, variant(t,
		`"metadata":{"name":"cfg-mirror","namespace":"ns"}`, `"metadata":{"name":"cfg-copy","namespace":"ns"}`))
	assertContains(t, failure,
		"mirror.jsonl): reconcile 1 (ns/cfg): host call 2 differs\n",
		"--- recorded\n+++ replayed\n@@ ",
		"\n-        \"name\": \"cfg-copy\",\n+        \"name\": \"cfg-mirror\",\n",
		"\n       \"metadata\": {\n", // context around the change
	)
}

func TestARecordedCallThatIsNotMadeFails(t *testing.T) {
	// The recording has a delete after the webhook call, which the operator does not make.
	failure := replayFailure(t, variant(t,
		`"body":"ok"}}}}],"outcome":{"result":{"requeueAfterMs":30000}}}`,
		`"body":"ok"}}}},{"kube":{"request":{"verb":"delete","apiVersion":"v1","kind":"ConfigMap","namespace":"ns","name":"old"},"response":{"ok":null}}}],"outcome":{"result":{"requeueAfterMs":30000}}}`))
	assertContains(t, failure,
		"reconcile 1 (ns/cfg): host call 5 of the recording was not made (0 more after it)\n",
		"--- recorded\n+++ replayed\n@@ -1,9 +0,0 @@\n-{\n-  \"kube\": {\n",
		"\n-    \"verb\": \"delete\"\n",
	)
}

func TestACallThatWasNotRecordedFails(t *testing.T) {
	// No webhook in the configuration the recording ran with: the call to it was not recorded.
	failure := replayFailure(t, variant(t,
		`"config":{"webhook":"http://hooks.example/mirrored"}`, `"config":{"webhook":"http://hooks.example/other"}`))
	assertContains(t, failure,
		"reconcile 1 (ns/cfg): host call 4 differs\n",
		"\n-    \"url\": \"http://hooks.example/mirrored?name=cfg\"\n+    \"url\": \"http://hooks.example/other?name=cfg\"\n",
	)

	path := variant(t, `,{"http":{"request":{"method":"GET","url":"http://hooks.example/mirrored?name=cfg"},"response":{"ok":{"status":200,"headers":{},"body":"ok"}}}}`, ``)
	failure = replayFailure(t, path)
	assertContains(t, failure,
		"reconcile 1 (ns/cfg): host call 4 was not in the recording (it had 3)\n",
		"@@ -0,0 +1,6 @@\n+{\n+  \"http\": {\n+    \"method\": \"GET\",\n",
	)
}

func TestADifferentOutcomeFails(t *testing.T) {
	failure := replayFailure(t, variant(t, `"requeueAfterMs":30000`, `"requeueAfterMs":60000`))
	assertContains(t, failure,
		"reconcile 1 (ns/cfg): the outcome differs\n",
		"\n-    \"requeueAfterMs\": 60000\n+    \"requeueAfterMs\": 30000\n",
	)

	// A Go error is recorded as the host words a guest error; the bare message is not that.
	failure = replayFailure(t, variant(t, `"message":"the operator reported an error: boom"`, `"message":"boom"`))
	assertContains(t, failure,
		"reconcile 3 (ns/bad): the outcome differs\n",
		"\n-    \"message\": \"boom\",\n+    \"message\": \"the operator reported an error: boom\",\n",
	)

	failure = replayFailure(t, variant(t, `"reason":"guest"`, `"reason":"trap"`))
	assertContains(t, failure, "\n-    \"reason\": \"trap\"\n+    \"reason\": \"guest\"\n")
}

func TestTimestampsAndFieldOrderDoNotMatter(t *testing.T) {
	ft := &fakeT{TB: t}
	fakehost.Replay(ft, variant(t,
		`"eventTime":"2026-01-02T03:04:05.123456Z"`, `"eventTime":"1999-12-31T23:59:59+02:00"`,
		`{"verb":"get","apiVersion":"v1","kind":"ConfigMap","namespace":"ns","name":"gone"}`,
		`{"name":"gone","namespace":"ns","kind":"ConfigMap","apiVersion":"v1","verb":"get"}`))
	if len(ft.failures) != 0 {
		t.Fatalf("the replay failed: %s", ft.failures[0])
	}

	// Only timestamps: a date alone is compared as it is.
	failure := replayFailure(t, variant(t, `"eventTime":"2026-01-02T03:04:05.123456Z"`, `"eventTime":"2026-01-02"`))
	assertContains(t, failure, "host call 3 differs", "\n-      \"eventTime\": \"2026-01-02\",\n+      \"eventTime\": \"<time>\",\n")
}

func TestInitIsReplayed(t *testing.T) {
	failure := replayFailure(t, variant(t, `"name":"mirror-settings"`, `"name":"settings"`))
	assertContains(t, failure, "init: host call 1 differs\n", "\n-    \"name\": \"settings\",\n+    \"name\": \"mirror-settings\",\n")

	// A configuration the operator refuses: init fails before its host call, which comes first.
	failure = replayFailure(t, variant(t, `"config":{"webhook":"http://hooks.example/mirrored"}`, `"config":{"webhook":7}`))
	assertContains(t, failure, "init: host call 1 of the recording was not made (0 more after it)\n")

	data, err := os.ReadFile("testdata/mirror.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	initCalls := strings.SplitAfter(string(data), "\n")[1]
	failure = replayFailure(t, variant(t, `"config":{"webhook":"http://hooks.example/mirrored"}`, `"config":{"webhook":7}`, initCalls, ""))
	assertContains(t, failure, "init: init failed, but it succeeded in the recording: the operator reported an error: init: operator config: ")
}

func TestTapesThatCannotBeReplayed(t *testing.T) {
	for _, tc := range []struct {
		name         string
		replacements []string
		want         string
	}{
		{"bad episode", []string{`{"reconcile":{"apiVersion":"v1","kind":"ConfigMap","namespace":"ns","name":"gone"`, `{"reconcile":[`}, "line 4 is not a tape episode: "},
		{"bad call", []string{`{"kube":{"request":{"verb":"get","apiVersion":"v1","kind":"ConfigMap","namespace":"ns","name":"gone"}`, `{"pod":{"request":{}`}, "line 4 is not a tape episode: call 1 is not one of"},
		{"other format", []string{`wasm-operator-tape/v1`, `wasm-operator-tape/v2`}, `the tape's format is "wasm-operator-tape/v2"; this version reads "wasm-operator-tape/v1"`},
		{"recreated instance", []string{`{"reconcile":{"apiVersion":"v1","kind":"ConfigMap","namespace":"ns","name":"gone","absentReason":"deleted","attempt":0},`, `{`}, "line 4 has host calls outside a reconcile after the first reconcile"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assertContains(t, replayFailure(t, variant(t, tc.replacements...)), tc.want)
		})
	}
	path := filepath.Join(t.TempDir(), "empty.jsonl")
	if err := os.WriteFile(path, []byte("\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	assertContains(t, replayFailure(t, path), "empty.jsonl): the tape is empty")
	assertContains(t, replayFailure(t, filepath.Join(t.TempDir(), "missing.jsonl")), "missing.jsonl")
}
