// Package doccheck holds the test that compiles every Go code block of docs/sdk-go.md, so an
// example in the guide cannot stop compiling against the SDK unnoticed.
//
// The test turns each ```go block into Go source in a temporary directory under testdata (inside
// this module, so the blocks import the SDK as any operator would), and runs `go vet` on them with
// GOOS=wasip1 GOARCH=wasm, the target operators are built for. The generated files carry //line
// directives, so every error names docs/sdk-go.md and the line of the block it is on.
//
// How a block is read:
//
//   - A block whose first code line is `package X` is a complete file of package X. All blocks of
//     the same package X are compiled together, so a page can show one program in several blocks
//     (main.go, then main_test.go), and other blocks can import the package by its name X.
//   - Any other block is a fragment: top-level declarations (types, funcs, vars), compiled in a
//     package of their own.
//   - A fragment's imports are found from what it uses: `client.New()` imports the SDK's client
//     package, `json.Marshal` imports encoding/json, `v1alpha1.WebApp` imports the page's package
//     v1alpha1. Only the packages listed in imports.go are known; an unknown one is a compile error.
//   - Files that declare `func Test...` are compiled as _test.go files.
//
// An HTML comment on the line before a fence, invisible when the page is rendered, changes this:
//
//	<!-- doccheck: package=main -->
//	    adds the fragment's declarations to package main of the page.
//	<!-- doccheck: body given="ctx context.Context, c client.Client" returns="(reconcile.Result, error)" -->
//	    the fragment is statements: it is compiled as the body of a function with these parameters
//	    (what the surrounding text says the fragment has) and results.
//
// Every block is checked; there is no way to skip one.
package doccheck
