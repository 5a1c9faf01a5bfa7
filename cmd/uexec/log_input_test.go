package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

const logLines = `{"event":"exec","time":"2026-12-01T10:00:00Z","pid":10,"ppid":1,"cwd":"/","path":"/bin/sh","argv":["sh","-c","x"],"chain":[],"result":"ok","by":"uexec"}
{"event":"exec","time":"2026-12-01T10:00:01Z","pid":11,"ppid":10,"cwd":"/","path":"/bin/true","argv":["true"],"chain":[],"result":"ok","by":"uexec"}
{"event":"exit","time":"2026-12-01T10:00:02Z","pid":11,"status":0}
`

// TestLogInput: uexec log names what is wrong with a file that is not an
// exec log, and the errno of one it cannot read (exit 125); reads a log cut
// short in its last line (the writer killed, its disk full) to that line,
// saying so; and stops without a word where its reader did (| head).
func TestLogInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(s), 0o644)
		return p
	}
	for _, c := range []struct {
		file, stderr string
		code         int
	}{
		{filepath.Join(dir, "missing"), "no such file or directory (ENOENT)", 125},
		{dir, "is a directory (EISDIR)", 125},
		{write("junk", "junk\n"), "line 1: not a line of an exec log: not JSON at byte 1", 125},
		{write("type", logLines+`{"event":"exec","pid":"x"}`+"\n"), `line 4: not a line of an exec log: "pid" is a JSON string, not a number`, 125},
		{write("time", `{"event":"exec","time":"soon"}`+"\n"), `line 1: not a line of an exec log: time "soon" is not an RFC 3339 time`, 125},
		{write("cut", logLines+`{"event":"exit","time":"2026-12`), "line 4 is cut short", 0},
	} {
		out, errOut, code := runCLI(t, "log", "tree", c.file)
		if code != c.code || !strings.Contains(errOut, c.stderr) || code == 0 && !strings.Contains(out, "true") {
			t.Errorf("uexec log tree %s: status %d, stderr %q, stdout %q; want %d and %q", filepath.Base(c.file), code, errOut, out, c.code, c.stderr)
		}
	}
	// A reader that went away: the status of SIGPIPE, nothing said.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	var e bytes.Buffer
	big := write("big", strings.Repeat(logLines, 2000))
	if code := run(strings.NewReader(""), w, &e, []string{"log", "tree", big}); code != 128+int(syscall.SIGPIPE) || e.Len() != 0 {
		t.Errorf("uexec log tree into a closed pipe: status %d, stderr %q", code, e.String())
	}
	w.Close()
}

// FuzzReadLog: any input is read or refused with an error, never a panic.
func FuzzReadLog(f *testing.F) {
	f.Add([]byte(logLines))
	f.Add([]byte(`{"event":"exec","time":"2026-12-01T10:00:00Z","pid":1,"tgid":2}` + "\n" + `{"event":"exit"`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if l, err := readLog(bytes.NewReader(b)); err == nil {
			var out bytes.Buffer
			renderTree(&out, l, 80)
			renderCompdb(&out, l)
			renderTrace(&out, l)
		}
	})
}
