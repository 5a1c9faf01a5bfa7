package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/uexec/uexec/internal/testenv"
)

// logRaw is a line of a --log-execs file, exec or exit, as the schema in
// README.md gives it.
type logRaw struct {
	Event  string   `json:"event"`
	Time   string   `json:"time"`
	Pid    int      `json:"pid"`
	Tgid   int      `json:"tgid"`
	Ppid   int      `json:"ppid"`
	Cwd    string   `json:"cwd"`
	Path   string   `json:"path"`
	Argv   []string `json:"argv"`
	Result string   `json:"result"`
	Status *int     `json:"status"`
	Signal string   `json:"signal"`
}

func readRawLog(t *testing.T, name string) []logRaw {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var out []logRaw
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var l logRaw
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		out = append(out, l)
	}
	return out
}

// copyProj copies testdata/execlog/proj into a new directory.
func copyProj(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("cp", "-r", mustAbs(t, "testdata/execlog/proj")+"/.", dir).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	return dir
}

// TestExecLogBuild runs a make build of a small C project (one file
// compiled from a subdirectory with cd, a command that exits 3, one that
// dies of SIGTERM) under `uexec run --log-execs` and checks the log and
// its readers: an exec line with the caller's cwd for every exec, one
// exit line per process after its exec lines; `uexec log compdb` equal to
// Bear's compile_commands.json of the same build; `uexec log trace` with
// one complete event per image, children within their parents; `uexec
// log tree` showing the build.
func TestExecLogBuild(t *testing.T) {
	needRun(t)
	testenv.NeedTool(t, "make")
	testenv.NeedTool(t, "gcc")
	dir := copyProj(t)
	logFile := filepath.Join(t.TempDir(), "log")
	r := runCmd(t, "", dir, uexecBin, "run", "--build", "--log-execs", logFile, "make")
	if r.status != 0 {
		t.Fatalf("make under uexec: %v", r)
	}
	if out := runCmd(t, "", dir, filepath.Join(dir, "prog")); out.stdout != "hello 42\n" {
		t.Errorf("built program: %v", out)
	}
	lines := readRawLog(t, logFile)

	t.Run("lines", func(t *testing.T) {
		if len(lines) == 0 || lines[0].Event != "exec" || filepath.Base(lines[0].Path) != "make" {
			t.Fatalf("first line is not make's exec: %+v", lines)
		}
		if last := lines[len(lines)-1]; last.Event != "exit" || last.Pid != lines[0].Pid || last.Status == nil || *last.Status != 0 {
			t.Errorf("last line is not make's exit 0: %+v", last)
		}
		exited := map[int]logRaw{}
		execs := map[int]int{}
		var sawSub, sawExit3, sawTerm bool
		for i, l := range lines {
			switch l.Event {
			case "exec":
				if _, ok := exited[l.Pid]; ok {
					t.Errorf("line %d: exec of pid %d after its exit line", i+1, l.Pid)
				}
				execs[l.Pid]++
				if !filepath.IsAbs(l.Cwd) {
					t.Errorf("line %d: cwd %q", i+1, l.Cwd)
				}
				want := dir
				if l.Result == "ok" && filepath.Base(l.Path) == "cc" {
					want, sawSub = filepath.Join(dir, "sub"), true
				}
				if l.Path == "./gcc" {
					want = filepath.Join(dir, "sub")
				}
				if filepath.Base(l.Path) == "make" || filepath.Base(l.Path) == "gcc" || filepath.Base(l.Path) == "sh" {
					if l.Cwd != want {
						t.Errorf("line %d: %s in %q, want %q", i+1, l.Path, l.Cwd, want)
					}
				}
			case "exit":
				if execs[l.Pid] == 0 {
					t.Errorf("line %d: exit of pid %d without an exec line before", i+1, l.Pid)
				}
				if _, ok := exited[l.Pid]; ok {
					t.Errorf("line %d: second exit line of pid %d", i+1, l.Pid)
				}
				if (l.Status == nil) == (l.Signal == "") || l.Time == "" {
					t.Errorf("line %d: want status or signal and time: %+v", i+1, l)
				}
				exited[l.Pid] = l
			default:
				t.Errorf("line %d: event %q", i+1, l.Event)
			}
		}
		for pid := range execs {
			if _, ok := exited[pid]; !ok {
				t.Errorf("pid %d has no exit line", pid)
			}
		}
		for _, l := range lines {
			if l.Event != "exec" || len(l.Argv) != 3 || l.Argv[0] != "sh" {
				continue
			}
			e := exited[l.Pid]
			switch l.Argv[2] {
			case "exit 3":
				sawExit3 = e.Status != nil && *e.Status == 3
			case "kill -TERM $$":
				sawTerm = e.Signal == "SIGTERM"
			}
		}
		if !sawSub || !sawExit3 || !sawTerm {
			t.Errorf("cc in sub/ %v, sh exit 3 %v, sh SIGTERM %v; want all", sawSub, sawExit3, sawTerm)
		}
	})

	t.Run("compdb", func(t *testing.T) {
		bear := testenv.NeedTool(t, "bear")
		bdir := copyProj(t)
		bfile := filepath.Join(t.TempDir(), "compile_commands.json")
		if r := runCmd(t, "", bdir, bear, "--output", bfile, "--", "make"); r.status != 0 {
			t.Fatalf("bear -- make: %v", r)
		}
		want, err := os.ReadFile(bfile)
		if err != nil {
			t.Fatal(err)
		}
		got := runCmd(t, "", "", uexecBin, "log", "compdb", logFile)
		if got.status != 0 {
			t.Fatalf("uexec log compdb: %v", got)
		}
		// The builds ran in two directories; nothing else may differ.
		w := strings.ReplaceAll(string(want), bdir, "$DIR")
		g := strings.ReplaceAll(got.stdout, dir, "$DIR")
		if w != g {
			t.Errorf("uexec log compdb differs from Bear's:\n%s", testenv.LineDiff(w, g))
		}
		if !strings.Contains(g, `"directory": "$DIR/sub"`) || !strings.Contains(g, `"file": "$DIR/sub/x.c"`) {
			t.Errorf("no entry for sub/x.c compiled in sub:\n%s", g)
		}
		// The compiler as exec'd (./gcc), sources that are gone left out.
		if !strings.Contains(g, `"./gcc",`) || strings.Contains(g, "gone.c") || strings.Contains(g, "missing.c") {
			t.Errorf("want ./gcc, and neither gone.c nor missing.c:\n%s", g)
		}
	})

	t.Run("trace", func(t *testing.T) {
		got := runCmd(t, "", "", uexecBin, "log", "trace", logFile)
		if got.status != 0 {
			t.Fatalf("uexec log trace: %v", got)
		}
		var tf struct {
			TraceEvents []struct {
				Name     string
				Ph       string
				Ts       float64
				Dur      *float64
				Pid, Tid int
				Args     struct{ Argv []string }
			}
		}
		if err := json.Unmarshal([]byte(got.stdout), &tf); err != nil {
			t.Fatalf("trace is not JSON: %v", err)
		}
		images := 0
		for _, l := range lines {
			if l.Event == "exec" && (l.Result == "ok" || l.Result == "kernel") {
				images++
			}
		}
		type span struct{ from, to float64 }
		procs := map[int]span{}
		n := 0
		for _, ev := range tf.TraceEvents {
			if ev.Ph != "X" {
				continue
			}
			n++
			if ev.Dur == nil || *ev.Dur < 0 || ev.Ts < 0 || ev.Pid == 0 || ev.Tid != ev.Pid || ev.Name == "" || len(ev.Args.Argv) == 0 {
				t.Errorf("incomplete event %+v", ev)
				continue
			}
			s, ok := procs[ev.Pid]
			if !ok {
				s = span{ev.Ts, ev.Ts + *ev.Dur}
			}
			s.from, s.to = min(s.from, ev.Ts), max(s.to, ev.Ts+*ev.Dur)
			procs[ev.Pid] = s
		}
		if n != images {
			t.Errorf("%d X events, want one per exec'd image: %d", n, images)
		}
		parent := map[int]int{}
		for _, l := range lines {
			if l.Event == "exec" {
				parent[l.Pid] = l.Ppid
			}
		}
		const slack = 0.002 // µs: rounding
		for pid, s := range procs {
			p, ok := procs[parent[pid]]
			if !ok {
				continue
			}
			if s.from < p.from-slack || s.to > p.to+slack {
				t.Errorf("pid %d [%.3f, %.3f] not within its parent %d [%.3f, %.3f]", pid, s.from, s.to, parent[pid], p.from, p.to)
			}
		}
	})

	t.Run("tree", func(t *testing.T) {
		saved := testEnv
		testEnv = append(append([]string{}, testEnv...), "COLUMNS=200")
		got := runCmd(t, "", "", uexecBin, "log", "tree", logFile)
		testEnv = saved
		if got.status != 0 {
			t.Fatalf("uexec log tree: %v", got)
		}
		for _, want := range []string{
			"make  (", "├─ gcc -O2 '-DGREETING=\"hello\"' -c main.c -o main.o  (", "├─ /bin/sh -c 'cd sub && cc -c x.c'  (",
			"│  └─ cc -c x.c  (", "sh -c 'exit 3'  (", ", exit 3)", "sh -c 'kill -TERM $$'  (", ", SIGTERM)",
		} {
			if !strings.Contains(got.stdout, want) {
				t.Errorf("tree lacks %q:\n%s", want, got.stdout)
			}
		}
	})
}

// TestLogTreeGolden renders testdata/execlog/tree.log (a hand-written log:
// nested processes, a failed PATH search, an exec that replaced a shell, a
// crash, a signal, a process not seen to end, a child logged before its
// parent's exec, an argv with a newline and an escape sequence, an
// AT_EXECVE_CHECK before the exec it checked) at 72 columns.
func TestLogTreeGolden(t *testing.T) {
	t.Setenv("COLUMNS", "72")
	var out, errb bytes.Buffer
	if code := run(strings.NewReader(""), &out, &errb, []string{"log", "tree", "testdata/execlog/tree.log"}); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	golden := "testdata/execlog/tree.golden"
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(want) != out.String() {
		t.Errorf("output differs from %s (rerun with -update after checking):\n%s", golden, testenv.LineDiff(string(want), out.String()))
	}
	for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		if n := len([]rune(line)); n > 72 {
			t.Errorf("line of %d columns: %q", n, line)
		}
	}
}

// TestExecLogWriteFails: a log whose writes fail (a full disk: /dev/full)
// is reported with its errno, and a run that succeeded exits 125, as
// --veriexec-learn does; a program's own failure keeps its status. uexec
// exited 0 with a log cut short, which `uexec log` then refused.
func TestExecLogWriteFails(t *testing.T) {
	needRun(t)
	for _, tc := range []struct {
		script string
		status int
	}{{"/bin/true", exitUsage}, {"exit 3", 3}} {
		r := runCmd(t, "", "/", uexecBin, "run", "--build", "--log-execs", "/dev/full", "/bin/sh", "-c", tc.script)
		if r.status.ExitStatus() != tc.status || !strings.Contains(r.stderr, "--log-execs /dev/full: write /dev/full: no space left on device (ENOSPC)") {
			t.Errorf("%s with a full log: %v, want status %d and the write's error", tc.script, r, tc.status)
		}
	}
}

// TestLogTreeDeep: a chain of processes, each the child of the one
// before, renders in lines no wider than the width (the branches of deep
// levels passed it: 150 columns for an 80-column width at 50), and a
// chain of 20000 in memory that grows with it, not with its square (the
// branches of every level were kept: gigabytes).
func TestLogTreeDeep(t *testing.T) {
	for _, depth := range []int{50, 20000} {
		var b strings.Builder
		for i := 1; i <= depth; i++ {
			fmt.Fprintf(&b, `{"event":"exec","time":"2026-01-01T00:00:00.%09dZ","pid":%d,"ppid":%d,"cwd":"/","path":"/bin/sh","argv":["sh","-c","next"],"chain":[],"result":"ok","by":"uexec"}`+"\n", i, 100+i, 99+i)
		}
		for i := depth; i >= 1; i-- {
			fmt.Fprintf(&b, `{"event":"exit","time":"2026-01-01T00:01:00.%09dZ","pid":%d,"status":0}`+"\n", depth-i, 100+i)
		}
		l, err := readLog(strings.NewReader(b.String()))
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		if err := renderTree(&out, l, 80); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		if len(lines) != depth {
			t.Fatalf("%d lines, want %d", len(lines), depth)
		}
		for i, line := range lines {
			if n := utf8.RuneCountInString(line); n > 80 {
				t.Errorf("depth %d, line %d: %d columns: %s", depth, i, n, line)
			}
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > uint64(depth)*4096 {
			t.Errorf("depth %d: %d MB allocated to render it", depth, alloc>>20)
		}
	}
}

// TestExecLogFailedFirst: the log line of a first program that could not
// be exec'd (nothing was started: the exec was uexec's own) names uexec's
// parent and working directory, tree and --once.
func TestExecLogFailedFirst(t *testing.T) {
	needRun(t)
	dir := t.TempDir()
	for _, mode := range [][]string{{}, {"--once"}} {
		r := runCmd(t, "", dir, append(append([]string{uexecBin, "run", "--build", "--log-execs", "-"}, mode...), "./nope")...)
		lines, _ := splitLog(r.stderr)
		var ev struct {
			Pid, Ppid   int
			Cwd, Result string
		}
		if r.status.ExitStatus() != 127 || len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &ev) != nil ||
			ev.Ppid != os.Getpid() || ev.Pid == ev.Ppid || ev.Cwd != dir || ev.Result != "ENOENT" {
			t.Errorf("uexec run %v ./nope (from pid %d): %v", mode, os.Getpid(), r)
		}
	}
}
