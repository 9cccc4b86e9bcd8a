// Package moduletest builds the example operator for wasip1 with the Go toolchain and checks the
// module against ABI v1: the exports and their signatures, and that every import is either a
// wasm_operator import with its exact signature or a wasi_snapshot_preview1 function.
package moduletest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// The signatures of ABI v1, written as wasm-objdump does.
var (
	wantExports = map[string]string{
		"_initialize":             "() -> ()",
		"wasm_operator_abi_v1":    "() -> ()",
		"wasm_operator_init":      "(i32) -> (i32)",
		"wasm_operator_reconcile": "(i32) -> (i32)",
	}
	allowedOperatorImports = map[string]string{
		"input_read":    "(i32, i32) -> (i32)",
		"result_write":  "(i32, i32) -> ()",
		"response_read": "(i32, i32) -> (i32)",
		"kube_request":  "(i32, i32) -> (i32)",
		"http_request":  "(i32, i32) -> (i32)",
		"log":           "(i32, i32) -> ()",
	}
)

func TestExampleModuleMatchesTheABI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Wasm module")
	}
	_, thisFile, _, _ := runtime.Caller(0)
	moduleRoot := filepath.Join(filepath.Dir(thisFile), "..", "..")
	touchSources(t, moduleRoot)
	out := filepath.Join(t.TempDir(), "minimal.wasm")
	build := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, "./examples/minimal")
	build.Dir = moduleRoot
	build.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if output, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the example: %v\n%s", err, output)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	m, err := parseModule(data)
	if err != nil {
		t.Fatal(err)
	}

	if !m.exportsMemory {
		t.Error("module does not export memory")
	}
	for name, want := range wantExports {
		got, ok := m.funcExports[name]
		if !ok {
			t.Errorf("missing export %s", name)
		} else if got != want {
			t.Errorf("export %s has type %s, want %s", name, got, want)
		}
	}
	if _, ok := m.funcExports["_start"]; ok {
		t.Error("module exports _start: it was built as a command, not a reactor")
	}
	versionMarkers := 0
	for name := range m.funcExports {
		if strings.HasPrefix(name, "wasm_operator_abi_v") {
			versionMarkers++
		}
	}
	if versionMarkers != 1 {
		t.Errorf("%d ABI version markers, want exactly 1", versionMarkers)
	}

	seen := map[string]bool{}
	for _, imp := range m.imports {
		switch imp.module {
		case "wasm_operator":
			want, known := allowedOperatorImports[imp.name]
			if !known {
				t.Errorf("unknown import wasm_operator.%s", imp.name)
			} else if imp.signature != want {
				t.Errorf("import wasm_operator.%s has type %s, want %s", imp.name, imp.signature, want)
			}
			seen[imp.name] = true
		case "wasi_snapshot_preview1":
		default:
			t.Errorf("import from module %q: only wasm_operator and wasi_snapshot_preview1 are allowed", imp.module)
		}
		if imp.kind != "func" {
			t.Errorf("import %s.%s is a %s; only functions may be imported", imp.module, imp.name, imp.kind)
		}
	}
	// The example uses the client and logging, not HTTP: the module must not ask for the http
	// capability, because the host grants capabilities by import.
	for _, name := range []string{"input_read", "result_write", "response_read", "kube_request", "log"} {
		if !seen[name] {
			t.Errorf("expected import wasm_operator.%s", name)
		}
	}
	if seen["http_request"] {
		t.Error("module imports http_request without using package httpclient")
	}
	t.Logf("module size %d bytes, %d imports", len(data), len(m.imports))
}

// touchSources reads every Go file of the module. The build runs in a child process, whose reads
// go test cannot see; reading the files here makes them part of the test's cache key, so an edit
// to the SDK re-runs this test instead of replaying a stale pass.
func touchSources(t *testing.T, root string) {
	t.Helper()
	err := filepath.WalkDir(root, func(path string, entry os.DirEntry, err error) error {
		if err != nil || entry.IsDir() || !(strings.HasSuffix(path, ".go") || entry.Name() == "go.mod") {
			return err
		}
		_, err = os.ReadFile(path)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
