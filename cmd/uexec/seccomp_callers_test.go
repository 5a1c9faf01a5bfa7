package main

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/uexec/uexec/internal/testenv"
)

// TestSeccompFilteredCallers: a process under seccomp filters of its own
// (a sandbox) that refuse a call the stub makes but the program does not
// need, prctl or munmap, or one both need, close, execs a program as
// natively: in root's tree (its exec is the kernel's, logged so) and with
// --once run under the filter (uexec's own filters: the kernel execs in
// place). The stub died of the refusal past the point of no return: SIGSEGV
// for a program that runs natively. As an ordinary user, a filter refusing
// execveat only; and the tree under one refusing close, which fails at once
// (it hung: Go's fork and exec waits for a pipe it cannot close); and the
// tree under one refusing munmap, which runs.
func TestSeccompFilteredCallers(t *testing.T) {
	needRun(t)
	testenv.NeedRoot(t) // root's tree builds its execs with the stub
	deny := testenv.BuildC(t, "testdata/progs/denycall.c")
	for _, nr := range []int{157, 11, 3} { // prctl, munmap, close
		n := strconv.Itoa(nr)
		native := runCmd(t, "", "/", deny, n, "/bin/echo", "hi")
		if nr != 3 && native.stdout != "hi\n" {
			t.Fatalf("natively, %s refused: %v", n, native)
		}
		tree := runCmd(t, "", "/", uexecBin, "run", "--build", "--log-execs", "-", deny, n, "/bin/echo", "hi")
		lines, rest := splitLog(tree.stderr)
		tree.stderr = rest
		if tree.String() != native.String() {
			t.Errorf("system call %s refused, in root's tree:\n%v\nnatively:\n%v", n, tree, native)
		}
		logged := false
		for _, l := range lines {
			logged = logged || strings.Contains(l, `"path":"/bin/echo"`) && strings.Contains(l, `"by":"kernel"`) && strings.Contains(l, "seccomp filters")
		}
		if !logged {
			t.Errorf("system call %s refused: the log does not say the kernel did the exec, and why:\n%s", n, strings.Join(lines, "\n"))
		}
		if testenv.Race && (nr == 11 || nr == 3) {
			// uexec built with -race is linked dynamically: ld.so and
			// the race runtime need the call before uexec runs.
			t.Logf("system call %s refused, --once under the filter: not tried under -race", n)
			continue
		}
		once := runCmd(t, "", "/", deny, n, uexecBin, "run", "--once", "/bin/echo", "hi")
		if once.String() != native.String() {
			t.Errorf("system call %s refused, --once under the filter:\n%v\nnatively:\n%v", n, once, native)
		}
	}
	// execveat refused, execve allowed: an ordinary user's plan asks the
	// kernel whether the file may be exec'd with execve then (it failed
	// with EPERM, exit 126).
	dir, bin := sharedUexec(t)
	shared := filepath.Join(dir, "denycall")
	copyFile(t, deny, shared, 0o755)
	native := runCmd(t, "", "/", append(asNobody(t), shared, "322", "/bin/echo", "hi")...)
	for _, argv := range [][]string{{shared, "322", bin, "run", "--once", "/bin/echo", "hi"}, {bin, "run", shared, "322", "/bin/echo", "hi"}} {
		if r := runCmd(t, "", "/", append(asNobody(t), argv...)...); r.String() != native.String() || r.stdout != "hi\n" {
			t.Errorf("as 65534, execveat refused: %v:\n%v\nnatively:\n%v", argv, r, native)
		}
	}
	if testenv.Race {
		t.Log("uexec under a filter refusing close or munmap: not tried under -race (see above)")
		return
	}
	// close refused: no fork and exec can end (Go's waits on a pipe it
	// cannot close); the tree says so at once (it hung), --once runs.
	r := runCmd(t, "", "/", deny, "3", uexecBin, "run", "--build", "/bin/echo", "hi")
	if r.status.ExitStatus() != 125 || !strings.Contains(r.stderr, "refuses close(2)") || !strings.Contains(r.stderr, "--once") {
		t.Errorf("the tree under a filter refusing close: %v", r)
	}
	// munmap refused, uexec itself under the filter: the tree's first
	// stub, the interpreter of its launcher, runs from where the kernel
	// mapped it and makes no munmap before the kernel's exec of the
	// program, which the filter judges: as natively. (Exec'd as itself,
	// the stub unmapped its file first and died of the refusal, SIGSEGV.)
	native = runCmd(t, "", "/", deny, "11", "/bin/echo", "hi")
	r = runCmd(t, "", "/", deny, "11", uexecBin, "run", "--build", "/bin/echo", "hi")
	if r.String() != native.String() {
		t.Errorf("the tree under a filter refusing munmap:\n%v\nnatively:\n%v", r, native)
	}
}
