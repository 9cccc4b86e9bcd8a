package doccheck

// knownImports maps the package names a fragment may use to their import paths: the SDK's
// packages, and the standard library packages the guide's fragments use.
var knownImports = map[string]string{
	"abi":            "wasm-operator.dev/sdk-go/abi",
	"client":         "wasm-operator.dev/sdk-go/client",
	"controllerutil": "wasm-operator.dev/sdk-go/controllerutil",
	"events":         "wasm-operator.dev/sdk-go/events",
	"fakehost":       "wasm-operator.dev/sdk-go/fakehost",
	"hosterr":        "wasm-operator.dev/sdk-go/hosterr",
	"httpclient":     "wasm-operator.dev/sdk-go/httpclient",
	"log":            "wasm-operator.dev/sdk-go/log",
	"operator":       "wasm-operator.dev/sdk-go/operator",
	"reconcile":      "wasm-operator.dev/sdk-go/reconcile",
	"types":          "wasm-operator.dev/sdk-go/types",

	"context": "context",
	"errors":  "errors",
	"fmt":     "fmt",
	"json":    "encoding/json",
	"strings": "strings",
	"testing": "testing",
	"time":    "time",
}
