package fakehost

import (
	"fmt"
	"strings"
)

// diffLine is one line of a line diff: kept (' '), only in the old text ('-') or only in the new
// one ('+'), with its 0-based index in each text it is in.
type diffLine struct {
	op     byte
	text   string
	oldPos int
	newPos int
}

// maxDiffCells bounds the table of the longest common subsequence; beyond it (texts of thousands
// of differing lines) the changed middle is shown as removed and added as a whole.
const maxDiffCells = 4 << 20

// unifiedDiff is a unified diff of two texts, line by line, headed "--- oldName" and
// "+++ newName", with context unchanged lines around each change. Equal texts give the headers
// alone.
func unifiedDiff(oldText, newText, oldName, newName string, context int) string {
	lines := diffLines(splitLines(oldText), splitLines(newText))
	var out strings.Builder
	fmt.Fprintf(&out, "--- %s\n+++ %s\n", oldName, newName)
	for start := 0; start < len(lines); {
		// The next change, and the hunk around it: changes separated by at most 2*context kept
		// lines share a hunk.
		first := start
		for first < len(lines) && lines[first].op == ' ' {
			first++
		}
		if first == len(lines) {
			break
		}
		last := first
		for next := first + 1; next < len(lines); next++ {
			if lines[next].op == ' ' {
				continue
			}
			if next-last-1 > 2*context {
				break
			}
			last = next
		}
		from := max(first-context, start)
		to := min(last+context+1, len(lines))
		writeHunk(&out, lines[from:to])
		start = to
	}
	return out.String()
}

func writeHunk(out *strings.Builder, hunk []diffLine) {
	oldCount, newCount := 0, 0
	oldStart, newStart := -1, -1
	for _, line := range hunk {
		if line.op != '+' {
			oldCount++
			if oldStart < 0 {
				oldStart = line.oldPos
			}
		}
		if line.op != '-' {
			newCount++
			if newStart < 0 {
				newStart = line.newPos
			}
		}
	}
	// 1-based; an empty side names the line before the hunk, as diff(1) does.
	oldStart = hunkStart(oldStart, oldCount, hunk[0].oldPos)
	newStart = hunkStart(newStart, newCount, hunk[0].newPos)
	fmt.Fprintf(out, "@@ -%d,%d +%d,%d @@\n", oldStart, oldCount, newStart, newCount)
	for _, line := range hunk {
		out.WriteByte(line.op)
		out.WriteString(line.text)
		out.WriteByte('\n')
	}
}

func hunkStart(start, count, position int) int {
	if count == 0 {
		return position
	}
	return start + 1
}

// splitLines splits text into lines without their newlines; a final newline ends the last line
// rather than starting an empty one.
func splitLines(text string) []string {
	if text == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(text, "\n"), "\n")
}

// diffLines aligns two texts on a longest common subsequence of their lines. Every diffLine
// carries, for the text it is not in, the position the next line of that text has.
func diffLines(old, new []string) []diffLine {
	prefix := 0
	for prefix < len(old) && prefix < len(new) && old[prefix] == new[prefix] {
		prefix++
	}
	suffix := 0
	for suffix < len(old)-prefix && suffix < len(new)-prefix && old[len(old)-1-suffix] == new[len(new)-1-suffix] {
		suffix++
	}
	var lines []diffLine
	for i := 0; i < prefix; i++ {
		lines = append(lines, diffLine{' ', old[i], i, i})
	}
	a, b := old[prefix:len(old)-suffix], new[prefix:len(new)-suffix]
	i, j := 0, 0
	if len(a) > 0 && len(b) > 0 && (len(a)+1)*(len(b)+1) <= maxDiffCells {
		// lcs[x][y]: the length of a longest common subsequence of a[x:] and b[y:].
		width := len(b) + 1
		lcs := make([]int32, (len(a)+1)*width)
		for x := len(a) - 1; x >= 0; x-- {
			for y := len(b) - 1; y >= 0; y-- {
				if a[x] == b[y] {
					lcs[x*width+y] = lcs[(x+1)*width+y+1] + 1
				} else {
					lcs[x*width+y] = max(lcs[(x+1)*width+y], lcs[x*width+y+1])
				}
			}
		}
		for i < len(a) && j < len(b) {
			switch {
			case a[i] == b[j]:
				lines = append(lines, diffLine{' ', a[i], prefix + i, prefix + j})
				i++
				j++
			case lcs[(i+1)*width+j] >= lcs[i*width+j+1]:
				lines = append(lines, diffLine{'-', a[i], prefix + i, prefix + j})
				i++
			default:
				lines = append(lines, diffLine{'+', b[j], prefix + i, prefix + j})
				j++
			}
		}
	}
	for ; i < len(a); i++ {
		lines = append(lines, diffLine{'-', a[i], prefix + i, prefix + j})
	}
	for ; j < len(b); j++ {
		lines = append(lines, diffLine{'+', b[j], prefix + len(a), prefix + j})
	}
	for k := 0; k < suffix; k++ {
		lines = append(lines, diffLine{' ', old[len(old)-suffix+k], len(old) - suffix + k, len(new) - suffix + k})
	}
	return lines
}
