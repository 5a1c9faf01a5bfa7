package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"time"
)

// The readers of --log-execs files: uexec log tree|compdb|trace FILE.

const logUsage = `usage: uexec log COMMAND FILE

Commands (FILE is a --log-execs file; "-" is standard input):
  tree    the process tree, each process with its argv, duration and status
  compdb  a compilation database (compile_commands.json) of the compilers
          that ran, as Bear makes it
  trace   Trace Event Format JSON, one event per image (Perfetto, chrome://tracing)
`

func cmdLog(stdin io.Reader, stdout, stderr io.Writer, args []string) int {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
		io.WriteString(stdout, logUsage)
		return 0
	}
	if len(args) != 2 {
		fmt.Fprintf(stderr, "uexec log: want COMMAND FILE\n%s", logUsage)
		return exitUsage
	}
	var render func(io.Writer, *execLogFile) error
	switch args[0] {
	case "tree":
		render = func(w io.Writer, l *execLogFile) error { return renderTree(w, l, termWidth(stdout)) }
	case "compdb":
		render = renderCompdb
	case "trace":
		render = renderTrace
	default:
		fmt.Fprintf(stderr, "uexec log: unknown command %s\n%s", args[0], logUsage)
		return exitUsage
	}
	r := stdin
	if args[1] != "-" {
		f, err := os.Open(args[1])
		if err != nil {
			fmt.Fprintf(stderr, "uexec log: %v%s\n", err, errnoSuffix(err))
			return exitUsage
		}
		defer f.Close()
		r = f
	}
	l, err := readLog(r)
	if err != nil {
		fmt.Fprintf(stderr, "uexec log: %s: %v%s\n", args[1], err, errnoSuffix(err))
		return exitUsage
	}
	if l.cut != 0 {
		fmt.Fprintf(stderr, "uexec log: %s: line %d is cut short (its writer stopped, or its disk was full): left out\n", args[1], l.cut)
	}
	bw := bufio.NewWriter(stdout)
	err = render(bw, l)
	if err == nil {
		err = bw.Flush()
	}
	if errors.Is(err, syscall.EPIPE) {
		// A reader that stopped (| head): no message, the status of a
		// death by SIGPIPE, as cat gives.
		return 128 + int(syscall.SIGPIPE)
	}
	if err != nil {
		fmt.Fprintf(stderr, "uexec log %s: %v%s\n", args[0], err, errnoSuffix(err))
		return exitUsage
	}
	return 0
}

// logRecord is any line of a log: an exec line, or an exit line (whose
// fields beyond the exec line's are its own).
type logRecord struct {
	execLogLine
	Status *int   `json:"status"`
	Signal string `json:"signal"`
	Core   bool   `json:"core"`
}

// logProc is one process of a log: the execs it made, in order, and its end.
type logProc struct {
	Pid, Ppid int
	Start     time.Time // its first exec line
	Execs     []*logExec
	Ended     bool // an exit line was seen
	End       time.Time
	Status    int    // with Ended and no Signal
	Signal    string // the signal it died of
	Core      bool
	Children  []*logProc
	parent    *logProc
}

// logExec is one exec line.
type logExec struct {
	Time time.Time
	Cwd  string
	Path string // absolute: the log's path against Cwd
	// Given is the path as the caller passed it (relative, say).
	Given  string
	Argv   []string
	Result string
	Check  bool // execveat(AT_EXECVE_CHECK): no exec
	proc   *logProc
}

// Done reports whether the exec replaced the image (by uexec or the
// kernel): not a check (AT_EXECVE_CHECK), which execs nothing.
func (e *logExec) Done() bool { return !e.Check && (e.Result == "ok" || e.Result == "kernel") }

// logImage is an image a process ran: from a successful exec to the next
// one or the process's end.
type logImage struct {
	*logExec
	End time.Time
}

// execLogFile is a parsed log.
type execLogFile struct {
	Procs []*logProc // in the order of their first exec line
	Execs []*logExec // every exec line, in order
	Roots []*logProc // processes whose parent is not in the log
	First time.Time  // the earliest time of the log
	Last  time.Time  // the latest
	// cut is the number of the last line, left out, when the log ends
	// in the middle of one; 0 otherwise.
	cut int
}

// maxLogLine bounds a line of a log (a 2 MB environment is not logged, an
// argv of as much is).
const maxLogLine = 64 << 20

func readLog(r io.Reader) (*execLogFile, error) {
	l := &execLogFile{}
	live := map[int]*logProc{} // by pid, until its exit line
	br := bufio.NewReader(r)
	n := 0
	for {
		line, err := readLine(br)
		if err == io.EOF && len(line) == 0 {
			break
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		n++
		if len(line) == 0 {
			continue
		}
		var rec logRecord
		if jerr := json.Unmarshal(line, &rec); jerr != nil {
			if err == io.EOF {
				l.cut = n // no newline: the log ends in this line
				break
			}
			return nil, fmt.Errorf("line %d: not a line of an exec log: %s", n, jsonProblem(jerr))
		}
		t, terr := time.Parse(time.RFC3339Nano, rec.Time)
		if terr != nil {
			return nil, fmt.Errorf("line %d: not a line of an exec log: time %q is not an RFC 3339 time", n, rec.Time)
		}
		if l.First.IsZero() || t.Before(l.First) {
			l.First = t
		}
		if t.After(l.Last) {
			l.Last = t
		}
		if rec.Tgid != 0 { // a thread's exec: its process is the one that ends
			rec.Pid = rec.Tgid
		}
		switch rec.Event {
		case "exit":
			p := live[rec.Pid]
			if p == nil {
				continue // a process of which no exec was logged
			}
			delete(live, rec.Pid)
			p.Ended, p.End, p.Signal, p.Core = true, t, rec.Signal, rec.Core
			if rec.Status != nil {
				p.Status = *rec.Status
			}
		case "exec", "": // "": a log from before the event field
			p := live[rec.Pid]
			if p == nil {
				p = &logProc{Pid: rec.Pid, Ppid: rec.Ppid, Start: t}
				if q := live[rec.Ppid]; q != nil {
					p.parent = q
					q.Children = append(q.Children, p)
				} else {
					l.Roots = append(l.Roots, p)
				}
				live[rec.Pid] = p
				l.Procs = append(l.Procs, p)
			}
			e := &logExec{Time: t, Cwd: rec.Cwd, Path: rec.Path, Given: rec.Path, Argv: rec.Argv, Result: rec.Result, Check: rec.Check, proc: p}
			if e.Path != "" && !filepath.IsAbs(e.Path) && e.Cwd != "" {
				e.Path = filepath.Join(e.Cwd, e.Path)
			}
			p.Execs = append(p.Execs, e)
			l.Execs = append(l.Execs, e)
		}
	}
	l.adoptRoots()
	for _, p := range l.Procs {
		sort.SliceStable(p.Children, func(i, j int) bool { return p.Children[i].Start.Before(p.Children[j].Start) })
	}
	return l, nil
}

// adoptRoots gives a parent to each root whose parent's first exec line
// comes after its own (a subshell's child, then the subshell's exec): the
// earliest process of its ppid whose first exec comes after its own. (One
// whose parent was live at its line has it; one whose parent never
// exec'd stays a root, unless its pid came round again within the log.)
func (l *execLogFile) adoptRoots() {
	var roots []*logProc
	for _, p := range l.Roots {
		var parent *logProc
		for _, q := range l.Procs {
			if q.Pid == p.Ppid && q != p && q.Start.After(p.Start) && (parent == nil || q.Start.Before(parent.Start)) {
				parent = q
			}
		}
		if parent == nil {
			roots = append(roots, p)
			continue
		}
		p.parent = parent
		parent.Children = append(parent.Children, p)
	}
	l.Roots = roots
}

// readLine reads one line of br without its newline: io.EOF with the
// line when the input ends without one, EFBIG past maxLogLine.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		part, err := br.ReadSlice('\n')
		line = append(line, part...)
		if len(line) > maxLogLine {
			return nil, fmt.Errorf("a line longer than %d MiB: %w", maxLogLine>>20, syscall.EFBIG)
		}
		switch err {
		case nil:
			return line[:len(line)-1], nil
		case bufio.ErrBufferFull:
			continue
		default:
			return line, err
		}
	}
}

// jsonProblem says what is wrong with a line encoding/json refused, in the
// log's terms.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("not JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		field := te.Field[strings.LastIndexByte(te.Field, '.')+1:]
		want := "an object"
		switch te.Type.Kind() {
		case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint, reflect.Uint64, reflect.Uint32, reflect.Float64:
			want = "a number"
		case reflect.String:
			want = "a string"
		case reflect.Bool:
			want = "a boolean"
		case reflect.Slice, reflect.Array:
			want = "an array"
		}
		return fmt.Sprintf("%q is a JSON %s, not %s", field, te.Value, want)
	}
	return err.Error()
}

// end is when p ended, or the log's last time if it was not seen to end.
func (l *execLogFile) end(p *logProc) time.Time {
	if p.Ended {
		return p.End
	}
	return l.Last
}

// images returns the images p ran, in order.
func (l *execLogFile) images(p *logProc) []logImage {
	var out []logImage
	for _, e := range p.Execs {
		if !e.Done() {
			continue
		}
		if n := len(out); n > 0 {
			out[n-1].End = e.Time
		}
		out = append(out, logImage{logExec: e})
	}
	if n := len(out); n > 0 {
		out[n-1].End = l.end(p)
	}
	return out
}
