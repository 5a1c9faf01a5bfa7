//go:build linux && amd64

package linux

import (
	"fmt"
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/execsw"
	"github.com/uexec/uexec/vm"
)

// Start runs plan in a new process and returns it running: it forks and
// execs the plan stub with opts' descriptors, working directory and
// personality, and the stub builds the planned image (see the package
// documentation). The plan's files stay open; the caller closes the plan.
//
// A failure before the stub's image is touched kills and reaps the stub
// quietly; a later one kills it with SIGSEGV, as Linux does when an exec
// fails past the point of no return. Either way the error is an *Error and
// no process or descriptor is left behind.
func Start(plan *execsw.Plan, opts *Options) (*Process, error) {
	if opts == nil {
		opts = &Options{}
	}
	if err := runnable(plan, opts.Path != "" && plan.Extended == ""); err != nil {
		return nil, err
	}
	return spawn(plan, opts)
}

// onNewThread runs f on a locked OS thread of its own and returns its
// result. When f reports a tracee may be left attached (traced), the
// thread stays locked and exits with the goroutine, and
// PTRACE_O_EXITKILL kills whatever it still traced; otherwise it is
// unlocked for the runtime.
func onNewThread(f func() (*Process, error, bool)) (*Process, error) {
	type result struct {
		p   *Process
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		p, err, traced := f()
		if !traced {
			runtime.UnlockOSThread()
		}
		ch <- result{p, err}
	}()
	r := <-ch
	return r.p, r.err
}

// runnable refuses the plans this backend cannot start.
func runnable(plan *execsw.Plan, byKernel bool) error {
	if plan.Fatal != nil {
		// Linux kills the process past the point of no return: nothing of
		// the new image ever runs.
		return &Error{Step: "past the point of no return", Signal: syscall.SIGSEGV, Err: plan.Fatal}
	}
	if plan.KernelOnly != "" && !byKernel {
		return fmt.Errorf("uexec backend: %s: only the kernel's exec of the request can run it: %w", plan.KernelOnly, syscall.EACCES)
	}
	// Without a 32-bit stub, a 32-bit image is the kernel's exec of the
	// same request, where that is the plan (byKernel); where it is not
	// (an extended plan: the kernel would run another file) it is
	// ENOEXEC, as a tree refuses it.
	if plan.Compat && !byKernel {
		why := "the kernel's exec is not the plan"
		if plan.Extended != "" {
			why = "the kernel's exec would not see the " + plan.Extended
		}
		return fmt.Errorf("a 32-bit image, which uexec has no 32-bit stub to build, and %s: %w", why, syscall.ENOEXEC)
	}
	return nil
}

type hostFile struct {
	fd     uintptr
	opened *os.File // to close after the start, if we opened it
}

// hostFD returns a descriptor of f in this process: its own if f.R is a
// file, else the path opened again (and checked to be the same file).
func hostFD(f *vm.File) (hostFile, error) {
	if fr, ok := f.R.(interface{ Fd() uintptr }); ok {
		return hostFile{fd: fr.Fd()}, nil
	}
	h, err := os.Open(f.Name())
	if err != nil {
		return hostFile{}, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(h.Fd()), &st); err != nil {
		h.Close()
		return hostFile{}, os.NewSyscallError("fstat", err)
	}
	if (f.Ino != 0 && st.Ino != f.Ino) || (f.Dev != 0 && st.Dev != f.Dev) {
		h.Close()
		return hostFile{}, fmt.Errorf("%s changed since it was checked: %w", f.Name(), unix.ESTALE)
	}
	return hostFile{fd: h.Fd(), opened: h}, nil
}
