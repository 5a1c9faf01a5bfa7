package main

import (
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
// for a program that runs natively.
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
		tree := runCmd(t, "", "/", uexecBin, "run", "--log-execs", "-", deny, n, "/bin/echo", "hi")
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
		once := runCmd(t, "", "/", deny, n, uexecBin, "run", "--once", "/bin/echo", "hi")
		if once.String() != native.String() {
			t.Errorf("system call %s refused, --once under the filter:\n%v\nnatively:\n%v", n, once, native)
		}
	}
}
