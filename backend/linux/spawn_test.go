//go:build linux && amd64

package linux

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/execsw"
	"github.com/uexec/uexec/internal/planstub"
	"github.com/uexec/uexec/internal/testenv"
	"github.com/uexec/uexec/vm"
)

// TestStubFailsAtEachStep makes each op of the stub's program fail in
// turn: the process dies with SIGSEGV, as Linux kills an exec that fails
// past the point of no return, the error names the op and the errno, and
// no process or descriptor is left behind.
func TestStubFailsAtEachStep(t *testing.T) {
	needPtrace(t)
	static := cc(t, "static", "int main(void){return 0;}\n", "-static")
	for _, prog := range []string{static, "/bin/true"} {
		plan, err := newSwitch(t).Execve(selfRequest(t, prog, []string{prog}, nil, false))
		if err != nil {
			t.Fatal(err)
		}
		p, err := Start(plan, &Options{})
		if err != nil {
			t.Fatalf("%s: %v", prog, err)
		}
		p.Wait()
		// The last op is the jump into the program: after the status
		// descriptor is closed, so it cannot report, and there is nothing
		// left that could fail.
		n := countOps(t, plan) - 1
		for i := 1; i <= n; i++ {
			t.Run(fmt.Sprintf("%s/op%d", prog, i-1), func(t *testing.T) {
				before := openFDs(t)
				p, err := Start(plan, &Options{failAt: i, Files: []*os.File{nil, nil, nil}})
				if err == nil {
					p.Kill()
					p.Wait()
					t.Fatal("Start succeeded")
				}
				var e *Error
				if !errors.As(err, &e) || e.Signal != syscall.SIGSEGV || !errors.Is(err, unix.ENOSYS) {
					t.Fatalf("got %v, want SIGSEGV and ENOSYS", err)
				}
				if want := fmt.Sprintf("stub op %d (injected failure)", i-1); !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
				if err := unix.Kill(e.Pid, 0); err != unix.ESRCH {
					t.Errorf("pid %d still exists: kill(0) = %v", e.Pid, err)
				}
				if after := openFDs(t); after != before {
					t.Errorf("%d descriptors open before, %d after", before, after)
				}
			})
		}
		plan.Close()
	}
}

// countOps compiles plan as Start does and returns its number of ops.
func countOps(t *testing.T, plan *execsw.Plan) int {
	t.Helper()
	env := &stubEnv{fds: map[*vm.File]int{}, rand: randReader(nil), statusFD: 9, vdso: vdsoOnce(), exe: programFile(plan)}
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_STACK, &rl); err != nil {
		t.Fatal(err)
	}
	env.rlimit = rl.Cur
	for i, f := range planFileList(plan) {
		env.fds[f] = 3 + i
		env.closeFDs = append(env.closeFDs, 3+i)
	}
	env.closeFDs = append(env.closeFDs, 9)
	cp, err := compile(plan, env)
	if err != nil {
		t.Fatal(err)
	}
	return len(cp.prog.Ops)
}

// TestStubOpensByName: the stub opens the plan's files by their names and
// checks them; a file that is no longer the planned one (another inode)
// kills the process with SIGSEGV past the point of no return, naming the
// check and ESTALE.
func TestStubOpensByName(t *testing.T) {
	needPtrace(t)
	plan, err := newSwitch(t).Execve(selfRequest(t, "/bin/true", []string{"/bin/true"}, nil, false))
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()
	p, err := Start(plan, &Options{byName: true})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := p.Wait(); err != nil || !st.Success() {
		t.Fatalf("by name: %v %v", st, err)
	}
	f := planFileList(plan)[0]
	f.Ino++
	defer func() { f.Ino-- }()
	_, err = Start(plan, &Options{byName: true})
	var e *Error
	if !errors.As(err, &e) || e.Signal != syscall.SIGSEGV || !errors.Is(err, unix.ESTALE) || !strings.Contains(err.Error(), "is the planned file") {
		t.Fatalf("a replaced file: %v, want SIGSEGV, ESTALE and the check's name", err)
	}
}

// TestSpawnStubRefused: in a sandbox that may execute only /usr and the
// test (Landlock), or under memory-deny-write-execute (PR_SET_MDWE, where
// the stub builds no image: an image may need a mapping both writable and
// executable), the stub cannot run; Start then has the kernel exec the program as planned, and it runs
// as natively, with the caller's descriptors only, and Process.Kernel says
// why. Where the stub would have set up more than os/exec does (a signal
// mask), Start fails with EACCES, naming the stub.
func TestSpawnStubRefused(t *testing.T) {
	if os.Getenv("UEXEC_SPAWN_REFUSED") == "1" {
		spawnRefusedChild(t)
		return
	}
	box := testenv.BuildC(t, "../../cmd/uexec/testdata/progs/landlockexec.c")
	mdwe := testenv.BuildC(t, "../../cmd/uexec/testdata/progs/mdwe.c")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, wrap := range [][]string{
		{box, "/usr:" + filepath.Dir(exe)},
		{mdwe}, // memory-deny-write-execute: the stub builds no image
	} {
		cmd := exec.Command(wrap[0], append(wrap[1:], exe, "-test.run=^TestSpawnStubRefused$", "-test.v")...)
		cmd.Env = append(os.Environ(), "UEXEC_SPAWN_REFUSED=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestSpawnStubRefused") {
			t.Errorf("under %s: %v\n%s", filepath.Base(wrap[0]), err, out)
		}
	}
}

// spawnRefusedChild is TestSpawnStubRefused in its sandbox.
func spawnRefusedChild(t *testing.T) {
	const ls = "/usr/bin/ls"
	argv := []string{"ls", "/proc/self/fd"}
	plan, err := newSwitch(t).Execve(selfRequest(t, ls, argv, nil, false))
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()
	run := func(start func(w *os.File) (*os.Process, string)) (string, string) {
		r, w := pipe(t)
		p, kernel := start(w)
		w.Close()
		out, _ := io.ReadAll(r)
		if st, err := p.Wait(); err != nil || !st.Success() {
			t.Fatalf("ls: %v %v: %s", st, err, out)
		}
		return string(out), kernel
	}
	env := []string{"LC_ALL=C"}
	native, _ := run(func(w *os.File) (*os.Process, string) {
		pid, err := syscall.ForkExec(ls, argv, &syscall.ProcAttr{Env: env, Files: []uintptr{^uintptr(0), w.Fd(), w.Fd()}})
		if err != nil {
			t.Fatalf("natively: %v", err)
		}
		p, _ := os.FindProcess(pid)
		return p, ""
	})
	under, kernel := run(func(w *os.File) (*os.Process, string) {
		p, err := Start(plan, &Options{Path: ls, Argv: argv, Env: env, Files: []*os.File{nil, w, w}})
		if err != nil {
			t.Fatalf("Start in the sandbox: %v", err)
		}
		return p.p, p.Kernel
	})
	// What the program sees of its descriptors: nothing of uexec's.
	if under != native || !strings.Contains(kernel, "the stub could not be executed (") {
		t.Errorf("ls /proc/self/fd printed %q, natively %q; Kernel %q", under, native, kernel)
	}
	mask := uint64(1 << (unix.SIGUSR1 - 1))
	_, err = Start(plan, &Options{Path: ls, Argv: argv, SigMask: &mask})
	if !errors.Is(err, unix.EACCES) || !strings.Contains(err.Error(), "executing the stub") {
		t.Errorf("Start with a signal mask in the sandbox: %v, want the stub's EACCES", err)
	}
}

// TestPlanDescriptor: a plan that fits a pipe is handed over in one, whole
// and with its writing end closed (read to EOF it is the plan); a larger
// one in a sealed memfd.
func TestPlanDescriptor(t *testing.T) {
	for _, n := range []int{100, planstub.PipePlanMax, planstub.PipePlanMax + 1} {
		b := bytes.Repeat([]byte{0xa5}, n)
		fd, err := planDescriptor(b)
		if err != nil {
			t.Fatal(err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			t.Fatal(err)
		}
		isPipe := st.Mode&unix.S_IFMT == unix.S_IFIFO
		if isPipe != (n <= planstub.PipePlanMax) {
			t.Errorf("%d bytes: a pipe %v, want %v", n, isPipe, !isPipe)
		}
		if !isPipe {
			seals, err := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0)
			if err != nil || seals&unix.F_SEAL_WRITE == 0 {
				t.Errorf("%d bytes: memfd seals %#x (%v), want F_SEAL_WRITE", n, seals, err)
			}
		}
		f := os.NewFile(uintptr(fd), "plan")
		got, err := io.ReadAll(f)
		if err != nil || !bytes.Equal(got, b) {
			t.Errorf("%d bytes: read back %d bytes (%v)", n, len(got), err)
		}
		f.Close()
	}
}
