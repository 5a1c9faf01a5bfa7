//go:build linux && amd64

package linux

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/internal/testenv"
)

// stateProg prints what a program inherits from the fork that started it:
// its cwd, personality, RLIMIT_NOFILE, signal mask and ignored signals,
// and each descriptor below 32 with its close-on-exec flag and file.
const stateProg = `#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/personality.h>
#include <sys/resource.h>
int main(void) {
	char b[4096];
	struct rlimit r;
	getrlimit(RLIMIT_NOFILE, &r);
	printf("cwd %s\npersonality %#x\nnofile %lu %lu\n", getcwd(b, sizeof b), personality(0xffffffff),
	       (unsigned long)r.rlim_cur, (unsigned long)r.rlim_max);
	FILE *f = fopen("/proc/self/status", "r");
	while (fgets(b, sizeof b, f))
		if (!strncmp(b, "SigBlk", 6) || !strncmp(b, "SigIgn", 6))
			fputs(b, stdout);
	fclose(f);
	for (int fd = 0; fd < 32; fd++) {
		int fl = fcntl(fd, F_GETFD);
		if (fl < 0)
			continue;
		char p[64];
		snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
		ssize_t n = readlink(p, b, sizeof b - 1);
		b[n < 0 ? 0 : n] = 0;
		printf("fd %d cloexec %d %s\n", fd, fl & FD_CLOEXEC, b);
	}
	return 0;
}
`

// startedState runs prog with files as its descriptors (nil: closed) in
// dir, by os/exec and by Start (whose stub vforkExec starts), and returns
// both outputs.
func startedState(t *testing.T, prog, dir string, files []*os.File) (native, under string) {
	t.Helper()
	cmd := exec.Command(prog)
	cmd.Dir, cmd.Env = dir, []string{}
	var out bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr, cmd.ExtraFiles = files[0], &out, files[2], files[3:]
	if err := cmd.Run(); err != nil {
		t.Fatalf("native %s: %v", prog, err)
	}
	plan, err := newSwitch(t).Execve(selfRequest(t, prog, []string{prog}, []string{}, false))
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()
	r, w := pipe(t)
	fs := append([]*os.File{files[0], w, files[2]}, files[3:]...)
	p, err := Start(plan, &Options{Path: prog, Argv: []string{prog}, Env: []string{}, Dir: dir, Files: fs})
	w.Close()
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if p.Kernel != "" {
		t.Fatalf("the kernel made the exec (%s): the stub's start is not tested", p.Kernel)
	}
	var got bytes.Buffer
	got.ReadFrom(r)
	if _, err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	// The two stdouts are different pipes.
	pipeLine := func(s string) string {
		var keep []string
		for _, l := range strings.Split(s, "\n") {
			if !strings.HasPrefix(l, "fd 1 ") {
				keep = append(keep, l)
			}
		}
		return strings.Join(keep, "\n")
	}
	return pipeLine(out.String()), pipeLine(got.String())
}

// TestVforkStartMatchesForkExec: a program whose stub vforkExec started
// inherits what it would from os/exec's fork: the working directory, the
// descriptors moved into place (one below its slot, one above, one in
// place, a closed slot), none of them close-on-exec, the signal mask and
// the ignored signals.
func TestVforkStartMatchesForkExec(t *testing.T) {
	testenv.NeedRoot(t)
	prog := cc(t, "state", stateProg)
	dn, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer dn.Close()
	a, b := pipe(t)
	// Stdin (0) goes to slot 5, which the pipe's end in slot 0 would
	// stomp on without the first pass.
	files := []*os.File{b, nil, dn, nil, a, os.Stdin}
	native, under := startedState(t, prog, "/usr", files)
	if native != under {
		t.Errorf("os/exec's program saw:\n%s\nStart's:\n%s", native, under)
	}
	if !strings.Contains(native, "cwd /usr\n") || !strings.Contains(native, "fd 4 cloexec 0 pipe:") {
		t.Errorf("the test does not see what it sets up:\n%s", native)
	}
}

// TestVforkNofile runs this test in a process started with a soft
// RLIMIT_NOFILE below the hard one, which Go's start raises and gives its
// children back (syscall.ForkExec): Start's program must get it back too,
// the limit learnt from a probe child or, where the probe fails, from
// syscall.ForkExec's own child.
func TestVforkNofile(t *testing.T) {
	testenv.NeedRoot(t)
	if os.Getenv("UEXEC_TEST_NOFILE") == "" {
		var lim unix.Rlimit
		if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
			t.Fatal(err)
		}
		testenv.Need(t, lim.Max > 300, "the hard RLIMIT_NOFILE is %d: no room for a lower soft one", lim.Max)
		cmd := exec.Command("/bin/sh", "-c", `ulimit -Sn 256 && exec "$0" -test.run '^TestVforkNofile$' -test.v`, os.Args[0])
		cmd.Env = append(os.Environ(), "UEXEC_TEST_NOFILE=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestVforkNofile") {
			t.Fatalf("the test with a soft limit of 256: %v\n%s", err, out)
		}
		return
	}
	var lim unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_NOFILE, &lim)
	if lim.Cur != lim.Max-1 {
		t.Fatalf("RLIMIT_NOFILE is %d/%d: Go's start did not raise it", lim.Cur, lim.Max)
	}
	prog := cc(t, "state", stateProg)
	check := func(how string) {
		native, under := startedState(t, prog, "/", []*os.File{os.Stdin, nil, os.Stderr})
		if !strings.Contains(native, "nofile 256 ") {
			t.Fatalf("os/exec's program does not see the soft limit of 256:\n%s", native)
		}
		if native != under {
			t.Errorf("%s: os/exec's program saw:\n%s\nStart's:\n%s", how, native, under)
		}
	}
	check("the limit learnt from a probe")
	// The probe failed: Start forks with syscall.ForkExec instead, on a
	// locked thread, which gives the program the original limit itself.
	probe, asked := nofileProbe, 0
	nofileProbe = func() (*unix.Rlimit, error) { asked++; return nil, unix.EAGAIN }
	defer func() { nofileProbe = probe }()
	check("the probe failed")
	if asked == 0 {
		t.Errorf("Start did not ask for the original limit: the fallback was not taken")
	}
}

// TestVforkArgsLayout keeps vforkArgs and vforkOp where vfork_amd64.s
// reads and writes them.
func TestVforkArgsLayout(t *testing.T) {
	var x vforkArgs
	var o vforkOp
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"ops", unsafe.Offsetof(x.ops), 0}, {"nops", unsafe.Offsetof(x.nops), 8},
		{"block", unsafe.Offsetof(x.block), 16}, {"saved", unsafe.Offsetof(x.saved), 24},
		{"failed", unsafe.Offsetof(x.failed), 32}, {"errno", unsafe.Offsetof(x.errno), 40},
		{"op.args", unsafe.Offsetof(o.args), 8}, {"op.mayFail", unsafe.Offsetof(o.mayFail), 56},
		{"op size", unsafe.Sizeof(o), 64},
	} {
		if c.got != c.want {
			t.Errorf("%s at %d, vfork_amd64.s has %d", c.name, c.got, c.want)
		}
	}
}

// TestStartInMissingDir: a child of vforkExec whose steps before its exec
// fail (its chdir) makes Start fail with the step and its errno, and is
// reaped: the caller is told at the end of the status pipe, not by a wait
// for the exec.
func TestStartInMissingDir(t *testing.T) {
	testenv.NeedRoot(t)
	const prog = "/bin/true"
	plan, err := newSwitch(t).Execve(selfRequest(t, prog, []string{prog}, []string{}, false))
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()
	before := testenv.Children(t)
	dir := filepath.Join(t.TempDir(), "gone")
	for range 20 {
		p, err := Start(plan, &Options{Path: prog, Argv: []string{prog}, Env: []string{}, Dir: dir})
		if err == nil {
			p.Wait()
			t.Fatalf("Start in a missing directory started pid %d (Kernel %q)", p.Pid, p.Kernel)
		}
		if !errors.Is(err, unix.ENOENT) || !strings.Contains(err.Error(), "chdir "+dir) {
			t.Fatalf("Start in a missing directory: %v, want the chdir's ENOENT", err)
		}
	}
	if after := testenv.Children(t); !slices.Equal(after, before) {
		t.Errorf("children before: %q, after: %q", before, after)
	}
}

// TestVforkChildFailure: vforkExec returns at once, before the child's
// exec; once the child has ended, failure gives the step that failed (the
// exec of a missing file) with its errno, and reaps it; a child that got
// through its exec has no failure.
func TestVforkChildFailure(t *testing.T) {
	ended := func(pid int) {
		t.Helper()
		var info unix.Siginfo
		if err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != nil {
			t.Fatalf("waiting for pid %d to end: %v", pid, err)
		}
	}
	missing := filepath.Join(t.TempDir(), "missing")
	c, err := vforkExec(missing, []string{"missing"}, "", []uintptr{0, 1, 2}, -1, nil)
	if err != nil {
		t.Fatal(err)
	}
	ended(c.pid)
	if err := c.failure(); !errors.Is(err, unix.ENOENT) || !strings.Contains(err.Error(), "execve "+missing) {
		t.Errorf("failure of an exec of a missing file: %v, want execve's ENOENT", err)
	}
	if err := unix.Kill(c.pid, 0); err != unix.ESRCH {
		t.Errorf("pid %d after failure: kill(0) gives %v, want ESRCH (reaped)", c.pid, err)
	}
	c, err = vforkExec("/bin/true", []string{"true"}, "", []uintptr{0, 1, 2}, -1, nil)
	if err != nil {
		t.Fatal(err)
	}
	ended(c.pid)
	if err := c.failure(); err != nil {
		t.Errorf("failure of a child that exec'd /bin/true: %v", err)
	}
	reap(c.pid)
}

// TestStartStubRefusedAfterClone: the kernel refusing the exec of the stub
// in the clone's child (EACCES: a launcher without execute permission),
// which the caller learns of only at the end of the status pipe, leads to
// what a refusal at the fork does: the kernel execs the program, and
// Process.Kernel says why.
func TestStartStubRefusedAfterClone(t *testing.T) {
	testenv.NeedRoot(t)
	_, ok := childNofile()
	testenv.Need(t, ok, "RLIMIT_NOFILE's original is not known: Start forks with syscall.ForkExec, not the clone")
	stub, err := planStub.path()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(stub)
	if err != nil {
		t.Fatal(err)
	}
	noexec := filepath.Join(t.TempDir(), "launch")
	if err := os.WriteFile(noexec, b, 0o644); err != nil {
		t.Fatal(err)
	}
	planStub.mu.Lock()
	launch, launchBad := planStub.launch, planStub.launchBad
	planStub.launch, planStub.launchBad = noexec, false
	planStub.mu.Unlock()
	defer func() {
		planStub.mu.Lock()
		planStub.launch, planStub.launchBad = launch, launchBad
		planStub.mu.Unlock()
	}()
	if got, _ := planStub.path(); got != noexec {
		t.Fatalf("the stub is %s, not the test's %s", got, noexec)
	}
	const prog = "/bin/true"
	plan, err := newSwitch(t).Execve(selfRequest(t, prog, []string{prog}, []string{}, false))
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()
	p, err := Start(plan, &Options{Path: prog, Argv: []string{prog}, Env: []string{}})
	if err != nil {
		t.Fatalf("Start with a stub the kernel refuses: %v", err)
	}
	st, err := p.Wait()
	if err != nil || !st.Success() {
		t.Fatalf("%s: %v %v", prog, st, err)
	}
	if !strings.Contains(p.Kernel, "the stub could not be executed (execve "+noexec+": permission denied)") {
		t.Errorf("Kernel %q, want the kernel's exec for the stub's EACCES", p.Kernel)
	}
}
