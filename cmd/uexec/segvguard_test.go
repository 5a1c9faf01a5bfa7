package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/uexec/uexec/internal/testelf"
	"github.com/uexec/uexec/internal/testenv"
)

// runWithin runs argv in dir and returns its output and exit code; a
// command still running after 60 s is killed and fails the test.
func runWithin(t *testing.T, dir string, argv ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = testEnv
	cmd.Dir = dir
	cmd.WaitDelay = 5 * time.Second
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%v: still running after 60 s\nstdout:\n%s\nstderr:\n%s", argv, o.String(), e.String())
	}
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("%v: %v", argv, err)
	}
	return o.String(), e.String(), cmd.ProcessState.ExitCode()
}

// segvguardLoop crashes ./crash six times in a row, runs another program,
// runs ./crash as another real uid, waits for the suspension to end and
// crashes ./crash once more.
const segvguardLoop = `for i in 1 2 3 4 5 6; do ./crash; echo "crash $?"; done
/bin/true && echo "true $?"
[ "$(id -u)" = 0 ] && { setpriv --reuid 65534 --regid 65534 --clear-groups ./crash; echo "other uid $?"; }
sleep 2.2
./crash; echo "after $?"`

// checkSegvguard checks the loop's output under --segvguard=5,60,2.
func checkSegvguard(t *testing.T, dir, stdout, stderr string, root bool) {
	t.Helper()
	want := "crash 139\ncrash 139\ncrash 139\ncrash 139\ncrash 139\ncrash 126\ntrue 0\n"
	if root {
		want += "other uid 139\n"
	}
	want += "after 139\n"
	if stdout != want {
		t.Errorf("stdout:\n%s\nwant:\n%s\nstderr:\n%s", stdout, want, stderr)
	}
	for _, line := range []string{
		"uexec: PaX Segvguard: [crash] Suspending execution for 2 seconds after 5 crashes.",
		"uexec: PaX Segvguard: [" + filepath.Join(dir, "crash") + "] Preventing execution due to repeated segfaults.",
		"./crash: Operation not permitted", // sh's message for EPERM
		"uexec: PaX Segvguard: [crash] Suspension expired.",
	} {
		if !strings.Contains(stderr, line+"\n") {
			t.Errorf("stderr has no line %q:\n%s", line, stderr)
		}
	}
	if n := strings.Count(stderr, "Preventing execution"); n != 1 {
		t.Errorf("%d refusals, want 1:\n%s", n, stderr)
	}
}

// TestSegvguard: a program that crashes five times within the window is
// refused with EPERM (sh says "Operation not permitted") until the
// suspension ends; other programs and other users are not.
func TestSegvguard(t *testing.T) {
	needRun(t)
	testenv.NeedTool(t, "setpriv")
	dir := testenv.SharedTempDir(t)
	copyFile(t, testenv.BuildC(t, "testdata/progs/crash.c"), filepath.Join(dir, "crash"), 0o755)
	stdout, stderr, code := runWithin(t, dir, uexecBin, "run", "--build", "--segvguard=5,60,2", "/bin/sh", "-c", segvguardLoop)
	if code != 0 {
		t.Errorf("exit %d", code)
	}
	checkSegvguard(t, dir, stdout, stderr, true)
}

// TestSegvguardOrdinaryUser: the same as uid 65534, whose execs the
// kernel does (uexec still sees each, and each death).
func TestSegvguardOrdinaryUser(t *testing.T) {
	needRun(t)
	setpriv := testenv.NeedTool(t, "setpriv")
	dir := testenv.SharedTempDir(t)
	copyFile(t, testenv.BuildC(t, "testdata/progs/crash.c"), filepath.Join(dir, "crash"), 0o755)
	bin := filepath.Join(dir, "uexec")
	copyFile(t, uexecBin, bin, 0o755)
	stdout, stderr, code := runWithin(t, dir, setpriv, "--reuid", "65534", "--regid", "65534", "--clear-groups", "--",
		bin, "run", "--segvguard=5,60,2", "/bin/sh", "-c", segvguardLoop)
	if code != 0 {
		t.Errorf("exit %d", code)
	}
	checkSegvguard(t, dir, stdout, stderr, false)
}

// TestSegvguardFatalExec: a process killed past the point of no return of
// its exec (an image the kernel cannot finish) is no crash of the program,
// whoever makes the exec: root's stub, or the kernel in an ordinary user's
// tree. Three such deaths under --segvguard=1 are each the exec's SIGSEGV,
// and nothing is suspended.
func TestSegvguardFatalExec(t *testing.T) {
	needRun(t)
	setpriv := testenv.NeedTool(t, "setpriv")
	dir := testenv.SharedTempDir(t)
	f := testelf.Static64()
	f.Progs[1].Filesz = 0x4000 // past its p_memsz: the exec dies after its point of no return
	writeFile(t, filepath.Join(dir, "fatal"), string(f.Bytes()), 0o755)
	bin := filepath.Join(dir, "uexec")
	copyFile(t, uexecBin, bin, 0o755)
	loop := "for i in 1 2 3; do ./fatal; echo \"fatal $?\"; done"
	for _, user := range [][]string{nil, {setpriv, "--reuid", "65534", "--regid", "65534", "--clear-groups", "--"}} {
		argv := append(append([]string{}, user...), bin, "run", "--segvguard=1,60,60", "/bin/sh", "-c", loop)
		stdout, stderr, code := runWithin(t, dir, argv...)
		if code != 0 || stdout != "fatal 139\nfatal 139\nfatal 139\n" || strings.Contains(stderr, "Segvguard") {
			t.Errorf("%v: exit %d\nstdout:\n%s\nstderr:\n%s", argv, code, stdout, stderr)
		}
	}
}

// TestSegvguardUsage: --once cannot count crashes (a usage error), and
// the settings are checked.
func TestSegvguardUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"once", []string{"run", "--once", "--segvguard", "/bin/true"}, "--segvguard needs tree mode"},
		{"two values", []string{"run", "--segvguard=5,60", "/bin/true"}, "want MAX,EXPIRY,SUSPEND"},
		{"zero", []string{"run", "--segvguard=0,60,3", "/bin/true"}, "not a positive number"},
		{"too large", []string{"run", "--segvguard=1,1,9223372036854775807", "/bin/true"}, "is out of range (at most 1073741824)"},
		{"past int64", []string{"run", "--segvguard=1,99999999999999999999,1", "/bin/true"}, "is out of range"},
		{"empty", []string{"plan", "--segvguard=", "/bin/true"}, "want MAX,EXPIRY,SUSPEND"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := runWithin(t, "/", append([]string{uexecBin}, tc.args...)...)
			if code != exitUsage || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, exitUsage, tc.want)
			}
		})
	}
	// plan has no history: the option changes nothing.
	a, _, _ := runWithin(t, "/", uexecBin, "plan", "--no-random", "/bin/true")
	b, _, code := runWithin(t, "/", uexecBin, "plan", "--no-random", "--segvguard", "/bin/true")
	if code != 0 || a != b {
		t.Errorf("plan --segvguard differs from plan (exit %d)", code)
	}
}
