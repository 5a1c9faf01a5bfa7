package main

import (
	"strings"
	"testing"

	"github.com/uexec/uexec/internal/testenv"
)

// The untraced tree: what a program sees of its own children, stops and
// namespaces is the kernel's, natively and under `uexec run`.

func compareTree(t *testing.T, argv ...string) {
	t.Helper()
	native := runCmd(t, "", "/", argv...)
	under := runCmd(t, "", "/", append([]string{uexecBin, "run"}, argv...)...)
	if native.String() != under.String() {
		t.Errorf("natively:\n%v\nunder uexec run:\n%v", native, under)
	}
}

// TestTreeWaitsAreNative: a child whose pidfd is readable is reapable at
// once (the tracer of the old design saw every exit first).
func TestTreeWaitsAreNative(t *testing.T) {
	needRun(t)
	prog := testenv.BuildC(t, "testdata/progs/pidfdreap.c")
	compareTree(t, prog, "200")
}

// TestTreeStoppedChild: a stopped child is in state T (stopped), not t
// (tracing stop), and not traced.
func TestTreeStoppedChild(t *testing.T) {
	needRun(t)
	compareTree(t, "/bin/sh", "-c", `exec 2>/dev/null; sleep 5 & p=$!; kill -STOP $p; sleep 0.2; ps -o stat= -p $p; grep TracerPid /proc/$p/status; kill -KILL $p; wait $p; echo $?`)
}

// TestTreeExecveCheck: execveat with AT_EXECVE_CHECK checks and does not
// exec: 0 for a program, the errno for a file that is not executable.
func TestTreeExecveCheck(t *testing.T) {
	needRun(t)
	prog := testenv.BuildC(t, "testdata/progs/execvecheck.c")
	compareTree(t, prog, "/bin/true", "/etc/passwd", "/nonexistent")
	r := runCmd(t, "", "/", uexecBin, "run", prog, "/bin/true")
	if !strings.Contains(r.stdout, "/bin/true: 0 ok") {
		t.Errorf("AT_EXECVE_CHECK of /bin/true: %v", r)
	}
}

// TestTreeOwnMountNamespace: a program that makes its own mount namespace
// and runs a file from a tmpfs mounted there runs it, as natively.
func TestTreeOwnMountNamespace(t *testing.T) {
	needRun(t)
	testenv.NeedTool(t, "unshare")
	compareTree(t, "/bin/sh", "-c", `unshare -m sh -c 'mount -t tmpfs t /mnt && cp /bin/true /mnt/x && /mnt/x && echo ran from the tmpfs'`)
}
