//go:build linux && amd64

package linux

import (
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/internal/planstub"
	"github.com/uexec/uexec/internal/testenv"
	"github.com/uexec/uexec/vm"
)

func openFDs(t *testing.T) int {
	t.Helper()
	names, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(names)
}

// TestFailure checks both sides of the point of no return: before it the
// stub is reaped quietly, after it the process is killed with SIGSEGV;
// either way no process or descriptor is left.
func TestFailure(t *testing.T) {
	needPtrace(t)
	tests := []struct {
		name   string
		extra  vm.Cmd
		signal syscall.Signal
		errno  error
	}{
		{
			// The stub runs from its pages until the end: a plan that
			// needs them fails before the stub starts.
			name:   "overlaps stub",
			extra:  vm.Cmd{Op: vm.OpZero, Addr: planstub.RunAddr, Len: vm.PageSize, Prot: vm.ProtRead, Flags: vm.FlagFixed},
			signal: 0,
			errno:  unix.ENOMEM,
		},
		{
			name:   "map beyond TASK_SIZE",
			extra:  vm.Cmd{Op: vm.OpZero, Addr: vm.TaskSize64 + vm.PageSize, Len: vm.PageSize, Prot: vm.ProtRead, Flags: vm.FlagFixed},
			signal: syscall.SIGSEGV,
			errno:  unix.ENOMEM,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := newSwitch(t).Execve(selfRequest(t, "/bin/true", []string{"true"}, nil, false))
			if err != nil {
				t.Fatal(err)
			}
			defer plan.Close()
			plan.Cmds = append(plan.Cmds, tt.extra)
			before := openFDs(t)
			p, err := Start(plan, &Options{})
			if err == nil {
				p.Kill()
				p.Wait()
				t.Fatal("Start succeeded")
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T %v, want *Error", err, err)
			}
			if e.Signal != tt.signal || !errors.Is(err, tt.errno) {
				t.Errorf("got %v (signal %v), want signal %v and %v", err, e.Signal, tt.signal, tt.errno)
			}
			if tt.signal == 0 {
				// Refused before any process was started.
				if e.Pid != 0 {
					t.Errorf("error names pid %d, want none", e.Pid)
				}
			} else if !strings.Contains(err.Error(), "pid ") {
				t.Errorf("error %q does not name the pid", err)
			} else if err := unix.Kill(e.Pid, 0); err != unix.ESRCH {
				t.Errorf("pid %d still exists: kill(0) = %v", e.Pid, err)
			}
			if after := openFDs(t); after != before {
				t.Errorf("%d descriptors open before, %d after", before, after)
			}
		})
	}
}

// TestReservedRangeByKernel: a plan that needs the stub's own range cannot
// be built by the stub; given the exec as requested, the kernel does it
// (the same exec) instead of a refusal the kernel would not give.
func TestReservedRangeByKernel(t *testing.T) {
	needPtrace(t)
	plan, err := newSwitch(t).Execve(selfRequest(t, "/bin/true", []string{"true"}, nil, false))
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()
	plan.Cmds = append(plan.Cmds, vm.Cmd{Op: vm.OpZero, Addr: planstub.RunAddr, Len: vm.PageSize, Prot: vm.ProtRead, Flags: vm.FlagFixed})
	p, err := Start(plan, &Options{Path: "/bin/true", Argv: []string{"true"}})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := p.Wait(); err != nil || !st.Success() {
		t.Errorf("status %v %v", st, err)
	}
}

// TestBigArgs needs a stack larger than the stub's: the mapping is grown
// and ends up where the kernel's would.
func TestBigArgs(t *testing.T) {
	needPtrace(t)
	path := cc(t, "static", showSrc, "-static")
	argv := []string{path, "maps"}
	for i := 0; i < 12000; i++ {
		argv = append(argv, strings.Repeat("x", 100))
	}
	env := []string{"A=1"}
	want := runNative(t, path, argv, env, true)
	got, _ := runUexec(t, path, argv, env, true)
	if d := testenv.LineDiff(want.stdout, got.stdout); d != "" {
		t.Errorf("native (-) and uexec (+) differ:\n%s", d)
	}
}

// TestSignal checks that the Process handle signals and reaps the program.
func TestSignal(t *testing.T) {
	needPtrace(t)
	plan, err := newSwitch(t).Execve(selfRequest(t, "/bin/sleep", []string{"sleep", "30"}, nil, false))
	if err != nil {
		t.Skipf("plan /bin/sleep: %v", err)
	}
	defer plan.Close()
	p, err := Start(plan, &Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	st, err := p.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if ws := st.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Errorf("status %v, want killed by SIGTERM", st)
	}
}
