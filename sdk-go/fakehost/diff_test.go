package fakehost

import (
	"strings"
	"testing"
)

func TestUnifiedDiff(t *testing.T) {
	var oldLines, newLines []string
	for c := 'a'; c <= 't'; c++ {
		oldLines = append(oldLines, "line "+string(c))
		switch c {
		case 'b':
			newLines = append(newLines, "LINE b") // changed
		case 'r': // removed
		default:
			newLines = append(newLines, "line "+string(c))
		}
	}
	newLines = append(newLines, "line u") // added
	old, new := strings.Join(oldLines, "\n")+"\n", strings.Join(newLines, "\n")+"\n"
	// Two hunks: the changes are more than twice the context apart.
	want := `--- old
+++ new
@@ -1,6 +1,6 @@
 line a
-line b
+LINE b
 line c
 line d
 line e
 line f
@@ -14,7 +14,7 @@
 line n
 line o
 line p
 line q
-line r
 line s
 line t
+line u
`
	if got := unifiedDiff(old, new, "old", "new", 4); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if got := unifiedDiff(old, old, "old", "new", 4); got != "--- old\n+++ new\n" {
		t.Errorf("equal texts: %q", got)
	}
	if got := unifiedDiff("", "x\ny\n", "old", "new", 4); got != "--- old\n+++ new\n@@ -0,0 +1,2 @@\n+x\n+y\n" {
		t.Errorf("from nothing: %q", got)
	}
}

func TestTimestampsAreRecognisedAsTheHostDoes(t *testing.T) {
	for text, want := range map[string]bool{
		"2026-01-02T03:04:05Z":        true,
		"2026-01-02T03:04:05.123456Z": true,
		"2026-01-02T03:04:05+02:00":   true,
		"2026-01-02T03:04:05.5-07:00": true,
		"2026-01-02":                  false,
		"2026-01-02T03:04:05":         false,
		"2026-01-02T03:04:05.Z":       false,
		"2026-01-02 03:04:05Z":        false,
		"web":                         false,
	} {
		if got := isTimestamp(text); got != want {
			t.Errorf("isTimestamp(%q) = %v", text, got)
		}
	}
	got := normalizedJSON([]byte(`{"b":["2026-01-02T03:04:05Z","web"],"a":1.50,"c":"<&>"}`))
	want := "{\n  \"a\": 1.50,\n  \"b\": [\n    \"<time>\",\n    \"web\"\n  ],\n  \"c\": \"<&>\"\n}\n"
	if got != want {
		t.Errorf("normalizedJSON:\n%s", got)
	}
}
