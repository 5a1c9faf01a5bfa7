//go:build linux && amd64

package linux

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/execsw"
	"github.com/uexec/uexec/format/elf"
	"github.com/uexec/uexec/format/script"
	"github.com/uexec/uexec/internal/testenv"
)

// need skips t, or fails it when UEXEC_REQUIRE_ALL=1, for a missing
// capability.
func need(t testing.TB, ok bool, why string) {
	t.Helper()
	testenv.Need(t, ok, "%s", why)
}

// needPtrace checks that this process can seize the processes it starts.
func needPtrace(t testing.TB) {
	t.Helper()
	err := ptraceUsable()
	need(t, err == nil, "ptrace: "+errString(err))
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func newSwitch(t testing.TB) *execsw.Switch {
	sw := &execsw.Switch{}
	if err := sw.Add(script.Format{}, execsw.PrioAny); err != nil {
		t.Fatal(err)
	}
	if err := sw.Add(elf.Format{}, execsw.PrioAny); err != nil {
		t.Fatal(err)
	}
	return sw
}

// selfRequest is an execve of path by this process.
func selfRequest(t testing.TB, path string, argv, envp []string, noRandom bool) *execsw.Request {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	req := &execsw.Request{Path: path, Argv: argv, Envp: envp, Dir: dir, Root: "/", NoRandom: noRandom}
	ruid, euid, suid := unix.Getresuid()
	rgid, egid, sgid := unix.Getresgid()
	req.Cred = execsw.Cred{UID: uint32(ruid), EUID: uint32(euid), SUID: uint32(suid), FSUID: uint32(euid),
		GID: uint32(rgid), EGID: uint32(egid), SGID: uint32(sgid), FSGID: uint32(egid),
		CapDACOverride: euid == 0, CapDACReadSearch: euid == 0}
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_STACK, &rl); err != nil {
		t.Fatal(err)
	}
	req.RlimitStack = rl.Cur
	if err := unix.Getrlimit(unix.RLIMIT_DATA, &rl); err != nil {
		t.Fatal(err)
	}
	req.RlimitData = rl.Cur
	return req
}

// result is what a caller observes of a run.
type result struct {
	stdout, stderr string
	status         syscall.WaitStatus
}

// runUexec plans path and starts it with the backend.
func runUexec(t testing.TB, path string, argv, envp []string, noRandom bool) (result, *Process) {
	t.Helper()
	plan, err := newSwitch(t).Execve(selfRequest(t, path, argv, envp, noRandom))
	if err != nil {
		t.Fatalf("plan %s: %v", path, err)
	}
	defer plan.Close()
	return runPlan(t, plan, noRandom)
}

func runPlan(t testing.TB, plan *execsw.Plan, noRandom bool) (result, *Process) {
	t.Helper()
	var out, errb bytes.Buffer
	stdout, wout := pipe(t)
	stderr, werr := pipe(t)
	dn, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer dn.Close()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); out.ReadFrom(stdout) }()
	go func() { defer wg.Done(); errb.ReadFrom(stderr) }()
	p, err := Start(plan, &Options{Files: []*os.File{dn, wout, werr}, NoRandom: noRandom, Logf: t.Logf})
	wout.Close()
	werr.Close()
	if err != nil {
		wg.Wait()
		t.Fatalf("Start: %v", err)
	}
	st, err := p.Wait()
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	return result{out.String(), errb.String(), st.Sys().(syscall.WaitStatus)}, p
}

func pipe(t testing.TB) (r, w *os.File) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

// runNative runs the same exec with the kernel's loader (setarch -R for
// noRandom).
func runNative(t testing.TB, path string, argv, envp []string, noRandom bool) result {
	t.Helper()
	cmd := &exec.Cmd{Path: path, Args: argv, Env: envp}
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	if noRandom {
		setarch, err := exec.LookPath("setarch")
		need(t, err == nil, "setarch not installed")
		// setarch execs path with argv[1:]; argv[0] is lost, so tests
		// with noRandom pass argv[0] == path.
		cmd = &exec.Cmd{Path: setarch, Args: append([]string{"setarch", "-R", path}, argv[1:]...), Env: cmd.Env}
	}
	cmd.Stdin = nil
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("native %s: %v", path, err)
	}
	return result{out.String(), errb.String(), cmd.ProcessState.Sys().(syscall.WaitStatus)}
}

// cc compiles a C program with gcc and the given flags.
func cc(t testing.TB, name, src string, flags ...string) string {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	need(t, err == nil, "gcc not installed")
	dir := t.TempDir()
	c := filepath.Join(dir, name+".c")
	if err := os.WriteFile(c, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, name)
	args := append(append([]string{}, flags...), "-O2", "-o", bin, c)
	if out, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
		need(t, false, "gcc "+name+": "+err.Error()+": "+string(out))
	}
	return bin
}
