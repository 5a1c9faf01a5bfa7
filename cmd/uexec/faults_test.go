package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/internal/testenv"
)

// The fault tests run a uexec built with -tags uexec_testhooks, which stops
// at the step UEXEC_TEST_STOP_AT names (backend/linux/stephook_testhooks.go)
// until the test removes UEXEC_TEST_STOP_FILE; the test kills uexec or the
// program there.

var hooksBin struct {
	once sync.Once
	path string
	err  error
}

// uexecHooks returns the test-hook build of uexec (next to uexecBin, which
// TestMain removes).
func uexecHooks(t *testing.T) string {
	t.Helper()
	hooksBin.once.Do(func() {
		hooksBin.path = filepath.Join(filepath.Dir(uexecBin), "uexec-hooks")
		out, err := exec.Command("go", "build", "-tags", "uexec_testhooks", "-o", hooksBin.path, ".").CombinedOutput()
		if err != nil {
			hooksBin.err = fmt.Errorf("go build -tags uexec_testhooks: %v\n%s", err, out)
		}
	})
	if hooksBin.err != nil {
		t.Fatal(hooksBin.err)
	}
	return hooksBin.path
}

// stopRun is a uexec run stopped (or about to stop) at a step.
type stopRun struct {
	cmd                    *exec.Cmd
	dir, stopFile, pidFile string
	outFile, errFile       string
	waited                 bool
}

// startAt starts the hook build of uexec with args, to stop at step. The
// program's stdout and uexec's stderr go to files (pipes would keep
// Wait waiting for the orphans).
func startAt(t *testing.T, step string, args ...string) *stopRun {
	t.Helper()
	dir := testenv.SharedTempDir(t)
	r := &stopRun{dir: dir, stopFile: filepath.Join(dir, "stop"), pidFile: filepath.Join(dir, "pid"),
		outFile: filepath.Join(dir, "out"), errFile: filepath.Join(dir, "err")}
	out, err := os.Create(r.outFile)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	errf, err := os.Create(r.errFile)
	if err != nil {
		t.Fatal(err)
	}
	defer errf.Close()
	for i, a := range args {
		args[i] = strings.ReplaceAll(a, "PIDFILE", r.pidFile)
	}
	r.cmd = exec.Command(uexecHooks(t), args...)
	r.cmd.Env = append(append([]string{}, testEnv...), "UEXEC_TEST_STOP_AT="+step, "UEXEC_TEST_STOP_FILE="+r.stopFile)
	r.cmd.Stdout, r.cmd.Stderr = out, errf
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !r.waited {
			r.cmd.Process.Kill()
			r.cmd.Wait()
		}
	})
	return r
}

// waitStop waits until uexec stopped at its step.
func (r *stopRun) waitStop(t *testing.T) {
	t.Helper()
	if !waitFor(20*time.Second, func() bool { _, err := os.Stat(r.stopFile); return err == nil }) {
		t.Fatalf("uexec did not reach step %s within 20s\nstderr: %s", os.Getenv("UEXEC_TEST_STOP_AT"), r.stderr())
	}
}

func (r *stopRun) resume() { os.Remove(r.stopFile) }

func (r *stopRun) stderr() string { b, _ := os.ReadFile(r.errFile); return string(b) }
func (r *stopRun) stdout() string { b, _ := os.ReadFile(r.outFile); return string(b) }

// wait waits for uexec within d and returns its status.
func (r *stopRun) wait(t *testing.T, d time.Duration) syscall.WaitStatus {
	t.Helper()
	done := make(chan struct{})
	go func() { r.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		r.cmd.Process.Kill()
		<-done
		t.Fatalf("uexec did not exit within %v (killed)\nstderr: %s", d, r.stderr())
	}
	r.waited = true
	return r.cmd.ProcessState.Sys().(syscall.WaitStatus)
}

// pid is the pid the caller wrote to PIDFILE, 0 if none.
func (r *stopRun) pid() int {
	b, err := os.ReadFile(r.pidFile)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

func waitFor(d time.Duration, ok func() bool) bool {
	for end := time.Now().Add(d); ; time.Sleep(5 * time.Millisecond) {
		if ok() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
	}
}

// procState is what /proc says of a process a fault may have left behind.
type procState struct {
	state, tracer, sigBlk, comm string
	fds                         map[string]string // number -> link
}

func readProcState(pid int) (procState, error) {
	var s procState
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(l, ":")
		v = strings.TrimSpace(v)
		switch k {
		case "State":
			s.state = v
		case "TracerPid":
			s.tracer = v
		case "SigBlk":
			s.sigBlk = v
		case "Name":
			s.comm = v
		}
	}
	s.fds = map[string]string{}
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, e := range ents {
		l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name()))
		s.fds[e.Name()] = l
	}
	return s, nil
}

func (s procState) String() string {
	return fmt.Sprintf("comm %q state %q TracerPid %s SigBlk %s fds %v", s.comm, s.state, s.tracer, s.sigBlk, s.fds)
}

// stoppedOrTraced reports whether the state is a stop or a trace stop.
func (s procState) stoppedOrTraced() bool {
	return s.tracer != "0" || strings.HasPrefix(s.state, "T") || strings.HasPrefix(s.state, "t")
}

// inheritedFD reports whether this test process has descriptor fd open on
// link without close-on-exec: then it was inherited from the test's own
// environment, and passed on to uexec and the program, as it should be.
func inheritedFD(fd, link string) bool {
	l, err := os.Readlink("/proc/self/fd/" + fd)
	if err != nil || l != link {
		return false
	}
	b, err := os.ReadFile("/proc/self/fdinfo/" + fd)
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "flags:"); ok {
			fl, _ := strconv.ParseUint(strings.TrimSpace(v), 8, 64)
			return fl&unix.O_CLOEXEC == 0
		}
	}
	return false
}

// subreaper makes the test the reaper of the orphans uexec's death leaves
// (the caller of the exec is uexec's child), so that they can be reaped.
func subreaper(t *testing.T) {
	t.Helper()
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) })
}

// killReap kills and reaps pid (an orphan the test reaps as subreaper).
func killReap(pid int) {
	if pid <= 0 {
		return
	}
	unix.Kill(pid, unix.SIGKILL)
	var ws unix.WaitStatus
	unix.Wait4(pid, &ws, 0, nil)
}

// TestFaultUexecKilled kills uexec (SIGKILL) at each step of an
// intercepted exec, of the first program's build and of --once. Then,
// within a deadline, the caller is neither stopped nor traced, and either
// its exec got the kernel's errno for an exec without a listener (ENOSYS:
// the filter stays, its listener died with uexec) with its signal mask
// untouched, or the program runs with the caller's mask and no descriptor
// of uexec's.
func TestFaultUexecKilled(t *testing.T) {
	needRun(t)
	execwait := testenv.BuildC(t, "testdata/progs/execwait.c")
	subreaper(t)
	for _, tc := range []struct {
		step string
		once bool
		// ran: the program must have run (true), the exec must have
		// failed with ENOSYS (false); leak: descriptors the ENOSYS
		// outcome may leave in the caller (the plan, installed before
		// the answer).
		ran, leak bool
		noProgram bool // uexec dies before anything starts
	}{
		{step: "build:compiled", noProgram: true},
		{step: "build:forked"},
		{step: "tree:notified"},
		{step: "tree:planned"},
		{step: "tree:seized"},
		{step: "tree:files-added", leak: true},
		{step: "tree:interrupted", leak: true},
		{step: "tree:answered", leak: true},
		{step: "tree:stopped", leak: true},
		{step: "tree:regs-set", ran: true},
		{step: "tree:masked", ran: true},
		{step: "tree:exec-event", ran: true},
		{step: "tree:detached", ran: true},
		{step: "once:compiled", once: true, noProgram: true},
	} {
		t.Run(tc.step, func(t *testing.T) {
			args := []string{"run", "--build"}
			if tc.once {
				args = append(args, "--once")
			}
			r := startAt(t, tc.step, append(args, execwait, "PIDFILE", "/bin/sleep", "30")...)
			r.waitStop(t)
			r.cmd.Process.Signal(syscall.SIGKILL)
			if ws := r.wait(t, 10*time.Second); ws.Signal() != syscall.SIGKILL {
				t.Fatalf("uexec: status %v, want killed", ws)
			}
			if tc.noProgram {
				time.Sleep(50 * time.Millisecond)
				if pid := r.pid(); pid != 0 {
					killReap(pid)
					t.Fatalf("a program (pid %d) started after uexec died before its start", pid)
				}
				return
			}
			var pid int
			if !waitFor(5*time.Second, func() bool { pid = r.pid(); return pid != 0 }) {
				t.Fatalf("no caller pid within 5s; stderr: %s", r.stderr())
			}
			defer killReap(pid)
			var s procState
			settled := waitFor(5*time.Second, func() bool {
				var err error
				if s, err = readProcState(pid); err != nil {
					return false
				}
				// sleep is looked at once it sleeps: while its ld.so
				// loads libc, libc is open on a descriptor of its own.
				return !s.stoppedOrTraced() && (s.comm == "sleep" && inNanosleep(pid) || strings.Contains(r.stdout(), "errno"))
			})
			if !settled {
				t.Fatalf("within 5s of uexec's death the caller is not running sleep or back from its exec, or is stopped or traced: %v\nstdout: %s\nstderr: %s", s, r.stdout(), r.stderr())
			}
			ran := s.comm == "sleep"
			if tc.step != "build:forked" && ran != tc.ran {
				t.Errorf("program ran %v, want %v: %v, stdout %q", ran, tc.ran, s, r.stdout())
			}
			if !ran && !strings.Contains(r.stdout(), fmt.Sprintf("errno %d\n", unix.ENOSYS)) {
				t.Errorf("the caller's exec: %q, want errno %d (ENOSYS)", r.stdout(), unix.ENOSYS)
			}
			if s.sigBlk != "0000000000000000" {
				t.Errorf("signal mask %s left after uexec's death, want the caller's (0): %v", s.sigBlk, s)
			}
			for fd, link := range s.fds {
				if fd == "0" || fd == "1" || fd == "2" || inheritedFD(fd, link) {
					continue
				}
				if !ran && tc.leak && strings.Contains(link, "uexec") {
					t.Logf("fd %s -> %s left in the caller (see README, Known limits)", fd, link)
					continue
				}
				t.Errorf("fd %s -> %s in the %s", fd, link, map[bool]string{true: "program", false: "caller"}[ran])
			}
		})
	}
}

// inNanosleep reports whether process pid waits in clock_nanosleep(2).
func inNanosleep(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/syscall", pid))
	return err == nil && strings.HasPrefix(string(b), strconv.Itoa(unix.SYS_CLOCK_NANOSLEEP)+" ")
}

// uexecChild returns the first child of process pid.
func uexecChild(pid int) int {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, task := range tasks {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, task.Name()))
		if f := strings.Fields(string(b)); len(f) > 0 {
			n, _ := strconv.Atoi(f[0])
			return n
		}
	}
	return 0
}

// TestFaultProgramKilledMidBuild kills the program (SIGKILL) while uexec
// builds it: the first program right after its stub started, and a
// redirected caller in its ptrace stop and at its exec of the stub. uexec
// goes on and ends with the program's signal; nothing is left.
func TestFaultProgramKilledMidBuild(t *testing.T) {
	needRun(t)
	execwait := testenv.BuildC(t, "testdata/progs/execwait.c")
	for _, step := range []string{"build:forked", "tree:stopped", "tree:regs-set", "tree:exec-event"} {
		t.Run(step, func(t *testing.T) {
			r := startAt(t, step, "run", "--build", execwait, "PIDFILE", "/bin/sleep", "30")
			r.waitStop(t)
			pid := uexecChild(r.cmd.Process.Pid)
			if pid == 0 {
				t.Fatal("uexec has no child at the step")
			}
			comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
			unix.Kill(pid, unix.SIGKILL)
			r.resume()
			if ws := r.wait(t, 10*time.Second); ws.Signal() != syscall.SIGKILL {
				t.Errorf("uexec: status %v, want the program's SIGKILL (killed pid %d, comm %q)\nstdout: %s\nstderr: %s",
					ws, pid, strings.TrimSpace(string(comm)), r.stdout(), r.stderr())
			}
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
				t.Errorf("the program (pid %d) is still there after uexec ended", pid)
			}
		})
	}
}

// TestFaultFileChanged truncates or replaces the program's file between
// its plan and its mapping, for the first program and for an exec of the
// tree: the program dies of the kernel's SIGBUS (a mapping past the end of
// the file is touched) or of SIGSEGV (the stub's by-name open finds
// another file: ESTALE, or a failed op), within a deadline, never a hang.
func TestFaultFileChanged(t *testing.T) {
	needRun(t)
	execwait := testenv.BuildC(t, "testdata/progs/execwait.c")
	echo, err := os.ReadFile("/bin/echo")
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []string{"build:compiled", "tree:planned"} {
		for _, change := range []string{"truncate", "replace"} {
			t.Run(step+"/"+change, func(t *testing.T) {
				dir := testenv.SharedTempDir(t)
				prog := filepath.Join(dir, "prog")
				if err := os.WriteFile(prog, echo, 0o755); err != nil {
					t.Fatal(err)
				}
				args := []string{"run", "--build", execwait, "PIDFILE", prog, "planned"}
				if step == "build:compiled" {
					args = []string{"run", "--build", prog, "planned"}
				}
				r := startAt(t, step, args...)
				r.waitStop(t)
				switch change {
				case "truncate":
					err = os.Truncate(prog, 0)
				case "replace":
					if err = os.WriteFile(prog+".new", []byte("#!/bin/sh\necho replaced\n"), 0o755); err == nil {
						err = os.Rename(prog+".new", prog)
					}
				}
				if err != nil {
					t.Fatal(err)
				}
				r.resume()
				ws := r.wait(t, 10*time.Second)
				// A replaced file is no longer the name's: the planned
				// file runs (its descriptor was opened at the plan) or
				// the stub's by-name open finds another inode (ESTALE).
				planned := change == "replace" && ws.Exited() && ws.ExitStatus() == 0 && r.stdout() == "planned\n"
				if sig := ws.Signal(); !planned && (!ws.Signaled() || sig != syscall.SIGBUS && sig != syscall.SIGSEGV) {
					t.Errorf("uexec: status %v, want the program's SIGBUS or SIGSEGV\nstdout: %s\nstderr: %s", ws, r.stdout(), r.stderr())
				}
				t.Logf("status %v stdout %q stderr %q", ws, r.stdout(), r.stderr())
			})
		}
	}
}

// TestFaultCallerRlimits runs a caller that exhausted RLIMIT_NOFILE or
// RLIMIT_AS (prlimit(1) sets them on itself, then execs) natively and
// under `uexec run`: the same status and messages, the kernel's errno or
// the loader's failure.
func TestFaultCallerRlimits(t *testing.T) {
	needRun(t)
	prlimit := testenv.NeedTool(t, "prlimit")
	var cases [][]string
	for _, n := range []string{"0", "3", "4", "5", "6"} {
		cases = append(cases, []string{prlimit, "--nofile=" + n, "/bin/true"}, []string{prlimit, "--nofile=" + n, "/bin/sh", "-c", "echo ok"})
	}
	for _, as := range []string{"1000000", "3000000", "6000000", "10000000", "20000000", "100000000"} {
		cases = append(cases, []string{prlimit, "--as=" + as, "/bin/true"}, []string{prlimit, "--as=" + as, "/bin/sh", "-c", "echo ok"})
	}
	for _, argv := range cases {
		name := strings.Join(argv[1:], " ")
		t.Run(strings.ReplaceAll(name, "/", "_"), func(t *testing.T) {
			native := runCmd(t, "", "", argv...)
			under := runCmd(t, "", "", append([]string{uexecBin, "run", "--build"}, argv...)...)
			if native.String() != under.String() {
				t.Errorf("natively:\n%v\nunder uexec:\n%v", native, under)
			}
		})
	}
}

// TestFaultNoTmpdirNoMemfd runs uexec with no writable TMPDIR or cache
// directory under a seccomp filter that refuses memfd_create: the tree
// fails at once with the errno, naming memfd_create, and starts nothing
// (no stub can be materialised and no plan written); --once, whose plan
// is the kernel's own exec and which runs under a seccomp filter of its
// own, has the kernel exec the program in place, with no stub.
func TestFaultNoTmpdirNoMemfd(t *testing.T) {
	needRun(t)
	nomemfd := testenv.BuildC(t, "testdata/progs/nomemfd.c")
	for _, mode := range [][]string{nil, {"--once"}} {
		t.Run(fmt.Sprint(mode), func(t *testing.T) {
			env := append([]string{}, testEnv...)
			env = append(env, "TMPDIR=/proc/uexec-none", "HOME=/proc/uexec-none", "XDG_CACHE_HOME=/proc/uexec-none")
			argv := append(append([]string{nomemfd, uexecBin, "run", "--build"}, mode...), "/bin/echo", "hi")
			r := runEnv(t, env, argv...)
			if mode != nil {
				if r.stdout != "hi\n" || r.status.ExitStatus() != 0 || r.stderr != "" {
					t.Errorf("want the kernel's exec of echo in place:\n%v", r)
				}
				return
			}
			if r.stdout != "" || r.status.ExitStatus() != 126 || !strings.Contains(r.stderr, "memfd_create: operation not permitted") {
				t.Errorf("want no output, exit 126 and memfd_create's EPERM on stderr:\n%v", r)
			}
		})
	}
}
