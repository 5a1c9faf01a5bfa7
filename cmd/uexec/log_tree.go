package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// uexec log tree: the process tree of a log, as pstree draws it. Each
// process is one line: its argv (of each image it ran, joined by " ⇒ "),
// shortened to the width, then its duration (first exec line to exit
// line) and how it ended.

// termWidth is the width tree output is shortened to: $COLUMNS, else the
// terminal's when w is one, else 80.
func termWidth(w io.Writer) int {
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n > 0 {
		return n
	}
	if f, ok := w.(*os.File); ok {
		if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil && ws.Col > 0 {
			return int(ws.Col)
		}
	}
	return 80
}

func renderTree(w io.Writer, l *execLogFile, width int) error {
	var walk func(p *logProc, lead, branch string)
	walk = func(p *logProc, lead, branch string) {
		suffix := "  (" + procSummary(l, p) + ")"
		text := shorten(procLabel(l, p), width-utf8.RuneCountInString(lead+branch)-utf8.RuneCountInString(suffix))
		// Deep in a tree the branches alone pass the width: the line
		// is cut there, as pstree cuts it.
		fmt.Fprintf(w, "%s\n", shorten(lead+branch+text+suffix, width))
		next := lead
		if utf8.RuneCountInString(lead) < width {
			// Past the width the lead is cut from every line: it
			// need not grow (a deep chain would make it quadratic).
			switch branch {
			case "├─ ":
				next += "│  "
			case "└─ ":
				next += "   "
			}
		}
		for i, c := range p.Children {
			b := "├─ "
			if i == len(p.Children)-1 {
				b = "└─ "
			}
			walk(c, next, b)
		}
	}
	for _, r := range l.Roots {
		walk(r, "", "")
	}
	return nil
}

// procLabel is the argv of each image of p; for a process whose execs all
// failed, the first one tried.
func procLabel(l *execLogFile, p *logProc) string {
	var parts []string
	for _, img := range l.images(p) {
		parts = append(parts, shellJoin(img.Argv))
	}
	if len(parts) == 0 && len(p.Execs) > 0 {
		e, last := p.Execs[0], p.Execs[len(p.Execs)-1]
		if last.Check {
			return shellJoin(e.Argv) + " [checked, not exec'd]"
		}
		return shellJoin(e.Argv) + " [exec failed: " + last.Result + "]"
	}
	return strings.Join(parts, " ⇒ ")
}

// procSummary is "pid N, 12.3ms, exit 0".
func procSummary(l *execLogFile, p *logProc) string {
	d := l.end(p).Sub(p.Start)
	var st string
	switch {
	case !p.Ended:
		st = "no exit seen"
	case p.Signal != "":
		st = p.Signal
		if p.Core {
			st += " (core dumped)"
		}
	default:
		st = "exit " + strconv.Itoa(p.Status)
	}
	return fmt.Sprintf("%s, %s", roundDuration(d), st)
}

// roundDuration keeps three or four significant digits.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond)
	case d < time.Second:
		return d.Round(100 * time.Microsecond)
	default:
		return d.Round(time.Millisecond)
	}
}

// shorten cuts s to n runes, marking the cut with "…".
func shorten(s string, n int) string {
	if n < 8 {
		n = 8
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// shellJoin quotes argv for reading, as a shell would need it.
func shellJoin(argv []string) string {
	var b strings.Builder
	for i, a := range argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=,+:@%^", r))
		}) < 0 {
			b.WriteString(a)
			continue
		}
		if strings.IndexFunc(a, unicode.IsControl) >= 0 {
			// A newline or an escape sequence written as is would break
			// the line (or drive the terminal): bash's $'...' form.
			b.WriteString(ansiQuote(a))
			continue
		}
		b.WriteString("'" + strings.ReplaceAll(a, "'", `'\''`) + "'")
	}
	return b.String()
}

// ansiQuote is a as bash's $'...' quoting: control characters, quotes and
// backslashes escaped.
func ansiQuote(a string) string {
	var b strings.Builder
	b.WriteString("$'")
	for _, r := range a {
		switch {
		case r == '\\' || r == '\'':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x80 && unicode.IsControl(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case unicode.IsControl(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('\'')
	return b.String()
}
