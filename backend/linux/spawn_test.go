//go:build linux && amd64

package linux

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/execsw"
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
