package doccheck

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// block is one ```go block of a page.
type block struct {
	line    int    // line of the block's first code line in the page
	code    string // the code, with the fence's indentation removed
	options string // the text of the doccheck comment before the fence, if any
}

var (
	fence        = regexp.MustCompile("^( *)```(\\S*)")
	directive    = regexp.MustCompile(`^\s*<!--\s*doccheck:(.*?)-->\s*$`)
	option       = regexp.MustCompile(`(\w+)(?:=(?:"([^"]*)"|(\S+)))?`)
	packageLine  = regexp.MustCompile(`(?m)^package (\w+)`)
	qualifiedUse = regexp.MustCompile(`\b([a-z][a-z0-9]*)\.[A-Za-z_]`)
	testFunc     = regexp.MustCompile(`(?m)^func Test`)
	lineComment  = regexp.MustCompile(`(?m)//.*$`)
	stringLit    = regexp.MustCompile("\"(?:[^\"\\\\\n]|\\\\.)*\"|`[^`]*`")
)

// code returns src without string literals and comments, where a name followed by a dot is not a
// package being used ("wasm-operator.dev" in a string, "see log.Info" in a comment).
func code(src string) string {
	return lineComment.ReplaceAllString(stringLit.ReplaceAllString(src, `""`), "")
}

// extract returns the ```go blocks of a Markdown page.
func extract(page string) ([]block, error) {
	lines := strings.Split(page, "\n")
	var blocks []block
	for i := 0; i < len(lines); i++ {
		m := fence.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		indent, lang := m[1], m[2]
		end := i + 1
		for end < len(lines) && strings.TrimSpace(lines[end]) != "```" {
			end++
		}
		if end == len(lines) {
			return nil, fmt.Errorf("line %d: the block never ends", i+1)
		}
		if lang == "go" {
			b := block{line: i + 2}
			if i > 0 {
				if d := directive.FindStringSubmatch(lines[i-1]); d != nil {
					b.options = d[1]
				}
			}
			var code []string
			for _, l := range lines[i+1 : end] {
				code = append(code, strings.TrimPrefix(l, indent))
			}
			b.code = strings.Join(code, "\n") + "\n"
			blocks = append(blocks, b)
		}
		i = end
	}
	return blocks, nil
}

// options parses `body given="..." returns="..." package=x`.
func parseOptions(text string) map[string]string {
	opts := map[string]string{}
	for _, m := range option.FindAllStringSubmatch(text, -1) {
		opts[m[1]] = m[2] + m[3] // quoted or bare value; "" for a bare word
	}
	return opts
}

// pkg is one package of generated files.
type pkg struct {
	name  string
	files map[string]string // file name -> source
}

// generate turns the blocks of page (named pageName in //line directives) into packages.
func generate(pageName string, blocks []block) (map[string]*pkg, error) {
	packages := map[string]*pkg{}
	get := func(dir, name string) *pkg {
		if packages[dir] == nil {
			packages[dir] = &pkg{name: name, files: map[string]string{}}
		}
		return packages[dir]
	}
	// Page packages are importable by name from fragments; collect them first.
	pagePackages := map[string]bool{}
	for _, b := range blocks {
		if m := packageLine.FindStringSubmatch(code(b.code)); m != nil {
			pagePackages[m[1]] = true
		}
	}
	for _, b := range blocks {
		opts := parseOptions(b.options)
		fileName := fmt.Sprintf("block_line%d.go", b.line)
		if testFunc.MatchString(b.code) {
			fileName = fmt.Sprintf("block_line%d_test.go", b.line)
		}
		directiveLine := fmt.Sprintf("//line %s:%d\n", pageName, b.line)
		if m := packageLine.FindStringSubmatch(code(b.code)); m != nil {
			get(m[1], m[1]).files[fileName] = directiveLine + b.code
			continue
		}
		dir, name := fmt.Sprintf("fragment%d", b.line), "fragment"
		if p := opts["package"]; p != "" {
			if !pagePackages[p] {
				return nil, fmt.Errorf("%s:%d: doccheck package=%s, but no block of the page is package %s", pageName, b.line, p, p)
			}
			dir, name = p, p
		}
		var src strings.Builder
		fmt.Fprintf(&src, "package %s\n\n", name)
		used := opts["given"] + "\n" + opts["returns"] + "\n" + code(b.code)
		for _, path := range importsFor(used, pagePackages) {
			fmt.Fprintf(&src, "import %q\n", path)
		}
		if _, isBody := opts["body"]; isBody {
			fmt.Fprintf(&src, "\nfunc _(%s) %s {\n", opts["given"], opts["returns"])
			src.WriteString(directiveLine + b.code)
			if opts["returns"] != "" {
				// The fragment may stop before its function would return; end it so it compiles.
				src.WriteString("panic(\"the fragment ends here\")\n")
			}
			src.WriteString("}\n")
		} else {
			src.WriteString("\n" + directiveLine + b.code)
		}
		get(dir, name).files[fileName] = src.String()
	}
	return packages, nil
}

// importsFor returns the import paths of the packages code uses by name.
func importsFor(code string, pagePackages map[string]bool) []string {
	seen := map[string]bool{}
	var paths []string
	for _, m := range qualifiedUse.FindAllStringSubmatch(code, -1) {
		name := m[1]
		path, known := knownImports[name]
		if pagePackages[name] {
			path, known = pagePackagePrefix+name, true
		}
		if known && !seen[path] {
			seen[path] = true
			paths = append(paths, path)
		}
	}
	sort.Strings(paths)
	return paths
}

// pagePackagePrefix is replaced by the import path of the directory the packages are written to.
const pagePackagePrefix = "PAGE/"

// check compiles every Go block of the page at pagePath and fails t with the compiler's messages,
// which name the page's lines.
func check(t *testing.T, pagePath, pageName string) {
	t.Helper()
	page, err := os.ReadFile(pagePath)
	if err != nil {
		t.Fatal(err)
	}
	// //line directives name the page by its absolute path, so errors point at the file itself.
	lineName := pageName
	if abs, err := filepath.Abs(pagePath); err == nil {
		lineName = abs
	}
	blocks, err := extract(string(page))
	if err != nil {
		t.Fatalf("%s: %v", pageName, err)
	}
	if len(blocks) == 0 {
		t.Fatalf("%s has no ```go blocks; has the fence format changed?", pageName)
	}
	packages, err := generate(lineName, blocks)
	if err != nil {
		t.Fatal(err)
	}

	// Inside this module (under testdata, which `go ... ./...` skips), so the blocks import the SDK.
	root, err := os.MkdirTemp("testdata", "run-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	importRoot := "wasm-operator.dev/sdk-go/internal/doccheck/" + filepath.ToSlash(root) + "/"
	var dirs []string
	for dir, p := range packages {
		for name, src := range p.files {
			src = strings.ReplaceAll(src, `"`+pagePackagePrefix, `"`+importRoot)
			if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, dir, name), []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		dirs = append(dirs, "./"+filepath.ToSlash(filepath.Join(root, dir)))
	}
	sort.Strings(dirs)

	// vet type-checks test files too, which build does not. A fragment wrapped in a function may
	// end in a return followed by the wrapper's panic: that is not the example's fault.
	cmd := exec.Command(goCommand(), append([]string{"vet", "-unreachable=false"}, dirs...)...)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("a Go block of %s does not compile (%v); the positions below are lines of %s:\n%s", pageName, err, pageName, out)
	}
	t.Logf("%d Go blocks of %s compile, in %d packages", len(blocks), pageName, len(packages))
}

// goCommand is the go command of the toolchain running the test, so the blocks are compiled by
// the same Go version.
func goCommand() string {
	if goroot := os.Getenv("GOROOT"); goroot != "" {
		if path := filepath.Join(goroot, "bin", "go"); fileExists(path) {
			return path
		}
	}
	return "go"
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func TestGoBlocksOfTheGuideCompile(t *testing.T) {
	check(t, filepath.Join("..", "..", "..", "docs", "sdk-go.md"), "docs/sdk-go.md")
}
