package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/uexec/uexec/internal/testenv"
)

// knownTreeDiffs are cases of testdata/tree/execs.c whose outcome under
// uexec differs from the kernel's for a reason outside the tree code.
var knownTreeDiffs = map[string]string{}

// splitCases splits the output of execs into its cases.
func splitCases(out string) map[string]string {
	cases := map[string]string{}
	var name string
	for _, line := range strings.SplitAfter(out, "\n") {
		if line != "" && !strings.HasPrefix(line, " ") {
			name = strings.TrimSuffix(strings.TrimSpace(line), ":")
			continue
		}
		cases[name] += line
	}
	return cases
}

// treeModes are the two ways root's tree makes an exec whose plan is the
// kernel's own: the kernel does it (the default), or uexec's stub builds
// it (--build). by is what the log says of such an exec.
var treeModes = []struct {
	name string
	args []string
	by   string
}{{"kernel", nil, "kernel"}, {"build", []string{"--build"}, "uexec"}}

// TestTreeExecs runs a C program that calls execve, execveat, fexecve,
// posix_spawn and vfork+exec directly, natively and under `uexec run`, with
// and without --build: every return value, errno, child status and what
// each child sees of its start (argv, comm, AT_EXECFN, AT_SECURE) must be
// the same.
func TestTreeExecs(t *testing.T) {
	needRun(t)
	bin := testenv.BuildC(t, mustAbs(t, "testdata/tree/execs.c"), "-pthread", "-w")
	nd := t.TempDir()
	env := append(testEnv[:len(testEnv):len(testEnv)], "EXECS_DRIVER=1")
	native := runEnv(t, env, bin, nd)
	n := splitCases(strings.ReplaceAll(native.stdout, nd, "DIR"))
	if len(n) < 40 {
		t.Fatalf("only %d cases ran natively:\n%s", len(n), native.stdout)
	}
	for _, mode := range treeModes {
		t.Run(mode.name, func(t *testing.T) {
			ud := t.TempDir()
			log := filepath.Join(t.TempDir(), "execs.jsonl")
			under := runEnv(t, env, append(append([]string{uexecBin, "run", "--log-execs", log}, mode.args...), bin, ud)...)
			if native.status != under.status {
				t.Errorf("status: native %v, uexec %v\n%s", native.status, under.status, under.stderr)
			}
			u := splitCases(strings.ReplaceAll(under.stdout, ud, "DIR"))
			for name, want := range n {
				got := u[name]
				if got == want {
					if why, ok := knownTreeDiffs[name]; ok {
						t.Logf("%s: now equal (was a known difference: %s)", name, why)
					}
					continue
				}
				if why, ok := knownTreeDiffs[name]; ok {
					t.Logf("%s: known difference (%s):\nnative:\n%suexec:\n%s", name, why, want, got)
					continue
				}
				t.Errorf("%s:\nnative:\n%suexec:\n%s", name, want, got)
			}
			// Every exec the program made is in the log, by uexec with
			// --build (the kernel: a 32-bit image, a check), else by the
			// kernel.
			by := 0
			for _, l := range readExecLog(t, log) {
				if l.By == mode.by {
					by++
				} else if !strings.Contains(l.Note, "32-bit") && !l.Check {
					t.Errorf("exec by %s: %+v", l.By, l)
				}
			}
			if by < 50 {
				t.Errorf("%d execs by %s in the log, want every exec of the program (50 or more)", by, mode.by)
			}
			// The AT_EXECVE_CHECK call is logged as a check (no exec);
			// an E2BIG exec with the argv it was given.
			checks := 0
			for _, l := range readExecLog(t, log) {
				if l.Result == "E2BIG" && len(l.Argv) == 0 {
					t.Errorf("E2BIG line without its argv: %+v", l)
				}
				if l.Check {
					checks++
					if !strings.HasSuffix(l.Path, "/self") || l.By != "kernel" {
						t.Errorf("check line %+v", l)
					}
				}
			}
			if checks != 1 {
				t.Errorf("%d lines with check, want 1 (execveat-check)", checks)
			}
			// The log's errno of each failed exec is the one the program
			// got: the errnos of both, counted, are the same. (Where the
			// kernel makes the exec, a log file's line is planned after
			// the caller's exec has gone on: the writer of the ETXTBSY
			// case may have closed its file by then.)
			got, want := logErrnos(readExecLog(t, log)), outErrnos(native.stdout)
			if mode.by == "kernel" {
				delete(got, "ETXTBSY")
				delete(want, "ETXTBSY")
			}
			if !maps.Equal(got, want) {
				t.Errorf("failed execs by errno: log %v, program (natively) %v", got, want)
			}
		})
	}
}

// errnoResult matches the result of a failed exec in the log: an errno's name.
var errnoResult = regexp.MustCompile(`^E[A-Z0-9]+$`)

// logErrnos counts the log's failed execs by errno.
func logErrnos(lines []logLine) map[string]int {
	n := map[string]int{}
	for _, l := range lines {
		if errnoResult.MatchString(l.Result) {
			n[l.Result]++
		}
	}
	return n
}

// outErrnos counts the failed execs that execs printed, by errno (execve's
// return, posix_spawn's, a vfork child's).
func outErrnos(out string) map[string]int {
	n := map[string]int{}
	for _, m := range regexp.MustCompile(`(?:returned errno|posix_spawn \w+| err)=(E[A-Z0-9]+)`).FindAllStringSubmatch(out, -1) {
		n[m[1]]++
	}
	return n
}

func mustAbs(t *testing.T, p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func runEnv(t *testing.T, env []string, argv ...string) result {
	t.Helper()
	saved := testEnv
	testEnv = env
	defer func() { testEnv = saved }()
	return runCmd(t, "", "", argv...)
}

type logLine struct {
	Event  string   `json:"event"`
	Time   string   `json:"time"`
	Pid    int      `json:"pid"`
	Ppid   int      `json:"ppid"`
	Cwd    string   `json:"cwd"`
	Path   string   `json:"path"`
	Argv   []string `json:"argv"`
	Chain  []struct{ Format, Path string }
	Result string `json:"result"`
	Error  string `json:"error"`
	By     string `json:"by"`
	Note   string `json:"note"`
	Check  bool   `json:"check"`
}

func readExecLog(t *testing.T, name string) []logLine {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []logLine
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var l logLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if l.Event == "exit" {
			continue // execlog_test.go checks those
		}
		if l.Event != "exec" {
			t.Errorf("log line %q: event %q", sc.Text(), l.Event)
		}
		if l.Time == "" || l.Pid == 0 || l.By == "" || l.Result == "" {
			t.Errorf("incomplete log line %q", sc.Text())
		}
		out = append(out, l)
	}
	return out
}

// TestTreeShell runs sh and bash scripts with pipelines, subshells,
// command substitutions, exec and a missing command natively and under
// `uexec run`, with and without --build: same output and status, and
// --log-execs lists every program that ran.
func TestTreeShell(t *testing.T) {
	needRun(t)
	script := `echo start; ls / | grep -c . >/dev/null; x=$(printf '%s' sub | tr a-z A-Z); echo "$x";
(cd /; pwd; /bin/echo subshell); nosuchcommand-uexec 2>&1 | sed 's/^[^:]*: *//;s/line [0-9]*: //'; echo "missing: $?";
sh -c 'exit 3'; echo "nested: $?"; env true && echo env-ok; f() { cat; }; echo piped | f; exec echo "exec'd"`
	for _, shell := range []string{"sh", "bash"} {
		for _, mode := range treeModes {
			t.Run(shell+"/"+mode.name, func(t *testing.T) {
				sh := testenv.NeedTool(t, shell)
				dir := t.TempDir()
				native := runCmd(t, "", dir, sh, "-c", script)
				log := filepath.Join(t.TempDir(), "log")
				under := runCmd(t, "", dir, append(append([]string{uexecBin, "run", "--log-execs", log}, mode.args...), sh, "-c", script)...)
				if native.String() != under.String() {
					t.Errorf("native:\n%v\nuexec:\n%v", native, under)
				}
				progs := map[string]bool{}
				for _, l := range readExecLog(t, log) {
					if l.Result == "ok" || l.Result == "kernel" {
						progs[filepath.Base(l.Path)] = true
					}
					if l.By != mode.by {
						t.Errorf("not by %s: %+v", mode.by, l)
					}
				}
				for _, want := range []string{shell, "ls", "grep", "tr", "echo", "sed", "sh", "env", "true", "cat"} {
					if !progs[want] {
						t.Errorf("log lacks %s; has %v", want, progs)
					}
				}
			})
		}
	}
}

// TestTreeBuild builds a small C project with make (make, sh, gcc, cc1,
// as, collect2, ld, printf, tr) natively and under `uexec run`: the same
// output, the same program.
func TestTreeBuild(t *testing.T) {
	needRun(t)
	testenv.NeedTool(t, "make")
	testenv.NeedTool(t, "gcc")
	src, err := filepath.Abs("testdata/tree/proj")
	if err != nil {
		t.Fatal(err)
	}
	build := func(under bool) (string, string) {
		dir := t.TempDir()
		if out, err := exec.Command("cp", "-r", src+"/.", dir).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v %s", err, out)
		}
		argv := []string{"make", "-j4"}
		log := filepath.Join(t.TempDir(), "log")
		if under {
			argv = append([]string{uexecBin, "run", "--build", "--log-execs", log}, argv...)
		}
		r := runCmd(t, "", dir, argv...)
		if r.status != 0 {
			t.Fatalf("%v: %v", argv, r)
		}
		run := runCmd(t, "", dir, filepath.Join(dir, "prog"))
		if under {
			progs := map[string]bool{}
			for _, l := range readExecLog(t, log) {
				progs[filepath.Base(l.Path)] = l.Result == "ok" || progs[filepath.Base(l.Path)]
			}
			for _, want := range []string{"make", "cc", "cc1", "as", "collect2", "ld"} {
				if !progs[want] {
					t.Errorf("log lacks %s: %v", want, progs)
				}
			}
		}
		return regexp.MustCompile(`(?m)^make\[\d+\].*\n`).ReplaceAllString(r.stdout, ""), run.stdout
	}
	nOut, nRun := build(false)
	uOut, uRun := build(true)
	if nOut != uOut || nRun != uRun {
		t.Errorf("native:\n%s%s\nuexec:\n%s%s", nOut, nRun, uOut, uRun)
	}
	if !strings.Contains(uRun, "version 1-2-3 triangle(10)=55") {
		t.Errorf("built program says %q", uRun)
	}
}

// TestTreeOnce: with --once the tree's later execs are the kernel's, and
// the log has the first exec only.
func TestTreeOnce(t *testing.T) {
	needRun(t)
	log := filepath.Join(t.TempDir(), "log")
	r := runCmd(t, "", "", uexecBin, "run", "--once", "--log-execs", log, "sh", "-c", "ls / >/dev/null; echo ok")
	if r.status != 0 || r.stdout != "ok\n" {
		t.Fatalf("%v", r)
	}
	if lines := readExecLog(t, log); len(lines) != 1 {
		t.Errorf("%d log lines, want 1: %+v", len(lines), lines)
	}
}

// TestTreeDescendants: uexec waits for descendants that outlive the first
// program and serves their execs; with --no-wait-descendants it exits with
// the first program.
func TestTreeDescendants(t *testing.T) {
	needRun(t)
	dir := t.TempDir()
	mark := filepath.Join(dir, "mark")
	script := `(sleep 0.3; /bin/echo late > ` + mark + `) & exit 5`
	log := filepath.Join(dir, "log")
	r := runCmd(t, "", "", uexecBin, "run", "--build", "--log-execs", log, "sh", "-c", script)
	if r.status.ExitStatus() != 5 {
		t.Fatalf("status %v, want 5: %v", r.status, r)
	}
	if b, err := os.ReadFile(mark); err != nil || string(b) != "late\n" {
		t.Fatalf("the descendant did not finish before uexec exited: %q %v", b, err)
	}
	found := false
	for _, l := range readExecLog(t, log) {
		found = found || (filepath.Base(l.Path) == "echo" && l.By == "uexec" && l.Result == "ok")
	}
	if !found {
		t.Errorf("the descendant's exec of echo is not in the log")
	}
}

// TestTreeNoWaitDescendants: with --no-wait-descendants uexec exits with
// the first program; a descendant still running continues, and its later
// execs are done by the kernel (a helper tracer lets them through, where
// the seccomp filter alone would fail them with ENOSYS).
//
// Twenty runs: uexec's look for the first program's stop could reap its
// end, and the tree was then handed off only at the next exec, the
// descendant's after its sleep (about one run in twenty).
func TestTreeNoWaitDescendants(t *testing.T) {
	needRun(t)
	dir := t.TempDir()
	const runs = 20
	for i := range runs {
		mark := filepath.Join(dir, fmt.Sprintf("mark%d", i))
		// The descendant leaves the test's pipes alone: a holder of
		// them would make the test wait, not uexec.
		script := `(sleep 0.5; /bin/echo late > ` + mark + `.tmp; mv ` + mark + `.tmp ` + mark + `) </dev/null >/dev/null 2>&1 & exit 6`
		r := runCmd(t, "", "", uexecBin, "run", "--build", "--no-wait-descendants", "sh", "-c", script)
		if r.status.ExitStatus() != 6 {
			t.Fatalf("run %d: status %v, want 6: %v", i, r.status, r)
		}
		if _, err := os.Stat(mark); err == nil {
			t.Fatalf("run %d: uexec waited for the descendant", i)
		}
	}
	for i := range runs {
		mark := filepath.Join(dir, fmt.Sprintf("mark%d", i))
		for tries := 0; ; tries++ {
			b, err := os.ReadFile(mark)
			if err == nil && string(b) == "late\n" {
				break
			}
			if err == nil || tries == 100 {
				t.Fatalf("run %d: the released descendant's execs failed (%s: %q, %v)", i, mark, b, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// TestTreeTracersInside documents that a tracer inside the tree cannot
// trace: its children are already traced by uexec (PTRACE_TRACEME and
// PTRACE_ATTACH fail with EPERM). With --once the kernel does the later
// execs and strace works.
func TestTreeTracersInside(t *testing.T) {
	needRun(t)
	strace := testenv.NeedTool(t, "strace")
	gdb := testenv.NeedTool(t, "gdb")
	dir := t.TempDir()
	out := dir + "/strace.out"
	// strace -f inside the untraced tree traces its program and that
	// program's own exec, as natively.
	r := runCmd(t, "", "", uexecBin, "run", "--build", strace, "-f", "-e", "trace=execve", "-o", out, "/bin/sh", "-c", "/bin/true; echo ok")
	b, _ := os.ReadFile(out)
	if r.status != 0 || r.stdout != "ok\n" || !strings.Contains(string(b), `execve("/bin/true"`) {
		t.Errorf("strace -f inside the tree: %v\n%s", r, b)
	}
	r = runCmd(t, "", "", uexecBin, "run", "--build", gdb, "-batch", "-nx", "-ex", "run", "--args", "/bin/sh", "-c", "echo ok; exit 3")
	if !strings.Contains(r.stdout, "ok\n") || !strings.Contains(r.stdout, "exited with code 03") {
		t.Errorf("gdb inside the tree: %v", r)
	}
	// Outside a tracer's moment, a process of the tree is not traced.
	r = runCmd(t, "", "", uexecBin, "run", "--build", "/bin/sh", "-c", "grep TracerPid /proc/self/status")
	if strings.Fields(r.stdout + " x")[1] != "0" {
		t.Errorf("TracerPid inside the tree: %v", r)
	}
}

// TestTreeNoWaitDescendantsBusy releases a descendant that execs without a
// pause: no exec of it may fail across the hand-over to the kernel.
func TestTreeNoWaitDescendantsBusy(t *testing.T) {
	needRun(t)
	out := filepath.Join(t.TempDir(), "out")
	script := `(for i in $(seq 1 300); do /bin/true || echo FAIL $i; done; echo done) </dev/null >` + out + ` 2>&1 & exit 6`
	r := runCmd(t, "", "", uexecBin, "run", "--build", "--no-wait-descendants", "sh", "-c", script)
	if r.status.ExitStatus() != 6 {
		t.Fatalf("status %v, want 6: %v", r.status, r)
	}
	for i := 0; i < 200; i++ {
		b, _ := os.ReadFile(out)
		if strings.HasSuffix(string(b), "done\n") {
			if string(b) != "done\n" {
				t.Errorf("the released descendant's execs failed:\n%s", b)
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the released descendant did not finish")
}

// TestTreeJobControl: a program in the tree stops its child with SIGSTOP
// and SIGTSTP and continues it with SIGCONT, natively and under `uexec
// run`: waitpid reports the stop and the continue, and the child does not
// run while stopped (the tree's tracer keeps group-stops with
// PTRACE_LISTEN).
func TestTreeJobControl(t *testing.T) {
	needRun(t)
	bin := testenv.BuildC(t, mustAbs(t, "testdata/tree/jobctl.c"), "-w")
	dir := t.TempDir()
	native := runCmd(t, "", "", bin, filepath.Join(dir, "native"))
	if native.status != 0 || !strings.HasSuffix(native.stdout, "ok\n") {
		t.Fatalf("natively: %v", native)
	}
	under := runCmd(t, "", "", uexecBin, "run", "--build", bin, filepath.Join(dir, "uexec"))
	if native.String() != under.String() {
		t.Errorf("native:\n%v\nuexec:\n%v", native, under)
	}
}

// TestTreeUnprivilegedCaller: a root shell under `uexec run` drops its
// privileges with setpriv; the unprivileged processes cannot reach
// uexec's /proc, yet their execs are uexec's (the stub from a file any
// user may execute, the plan's files opened by name as the caller), with
// the same output as natively. A program the caller may execute but not
// read (mode 0711) is left to the kernel, with a note.
func TestTreeUnprivilegedCaller(t *testing.T) {
	needRun(t)
	testenv.NeedRoot(t)
	setpriv := testenv.NeedTool(t, "setpriv")
	drop := []string{setpriv, "--reuid", "65534", "--regid", "65534", "--clear-groups"}
	t.Run("readable", func(t *testing.T) {
		argv := append(drop[:len(drop):len(drop)], "/bin/sh", "-c", "/bin/echo hi; id -u")
		native := runCmd(t, "", "/", argv...)
		log := filepath.Join(t.TempDir(), "log")
		under := runCmd(t, "", "/", append([]string{uexecBin, "run", "--build", "--log-execs", log}, argv...)...)
		if native.String() != under.String() || native.stdout != "hi\n65534\n" {
			t.Errorf("native:\n%v\nuexec:\n%v", native, under)
		}
		// setpriv is root's: uexec's; the rest are the dropped
		// caller's, whose /proc/PID/exe only the kernel's exec can get
		// right.
		by := map[string]string{}
		for _, l := range readExecLog(t, log) {
			by[filepath.Base(l.Path)] = l.By
		}
		want := map[string]string{"setpriv": "uexec", "sh": "kernel", "echo": "kernel", "id": "kernel"}
		for prog, b := range want {
			if by[prog] != b {
				t.Errorf("log: %s by %q, want %s; have %v", prog, by[prog], b, by)
			}
		}
	})
	t.Run("unreadable", func(t *testing.T) {
		dir := t.TempDir()
		// Reachable by nobody: the test's directories under the
		// temporary directory become searchable by all.
		for d := dir; d != "/" && d != filepath.Clean(os.TempDir()); d = filepath.Dir(d) {
			if st, err := os.Stat(d); err == nil && st.Mode().Perm()&0o001 == 0 {
				os.Chmod(d, st.Mode().Perm()|0o011)
			}
		}
		b, err := os.ReadFile("/bin/true")
		if err != nil {
			t.Fatal(err)
		}
		prog := filepath.Join(dir, "true")
		if err := os.WriteFile(prog, b, 0o711); err != nil {
			t.Fatal(err)
		}
		os.Chmod(prog, 0o711)
		argv := append(drop[:len(drop):len(drop)], "/bin/sh", "-c", prog+" && echo ran")
		native := runCmd(t, "", "/", argv...)
		log := filepath.Join(t.TempDir(), "log")
		under := runCmd(t, "", "/", append([]string{uexecBin, "run", "--build", "--log-execs", log}, argv...)...)
		if native.String() != under.String() || native.stdout != "ran\n" {
			t.Errorf("native:\n%v\nuexec:\n%v", native, under)
		}
		found := false
		for _, l := range readExecLog(t, log) {
			if l.Path != prog {
				continue
			}
			found = true
			if l.By != "kernel" {
				t.Errorf("the unreadable program: %+v, want by the kernel", l)
			}
		}
		if !found {
			t.Errorf("the unreadable program is not in the log")
		}
	})
}
