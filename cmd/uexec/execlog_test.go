package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/uexec/uexec/internal/testenv"
)

// logRaw is a line of a --log-execs file, exec or exit, as the schema in
// README.md gives it.
type logRaw struct {
	Event  string   `json:"event"`
	Time   string   `json:"time"`
	Pid    int      `json:"pid"`
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
// exit line per process after its exec lines.
func TestExecLogBuild(t *testing.T) {
	needRun(t)
	testenv.NeedTool(t, "make")
	testenv.NeedTool(t, "gcc")
	dir := copyProj(t)
	logFile := filepath.Join(t.TempDir(), "log")
	r := runCmd(t, "", dir, uexecBin, "run", "--log-execs", logFile, "make")
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
}
