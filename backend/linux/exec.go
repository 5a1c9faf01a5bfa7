//go:build linux && amd64

package linux

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/execsw"
	"github.com/uexec/uexec/internal/stub"
	"github.com/uexec/uexec/internal/tracee"
	"github.com/uexec/uexec/vm"
)

// Start runs plan in a new process and returns it running: it executes the
// stub under ptrace with opts' descriptors, working directory and
// personality, builds the planned image in it (see the package
// documentation) and detaches. The plan's files stay open; the caller
// closes the plan.
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
	if opts.tree == nil {
		return spawn(plan, opts)
	}
	// This thread is the tracer for the stub's whole traced life.
	return onNewThread(func() (*Process, error, bool) { return start(plan, opts) })
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
	// Without a 32-bit stub, a 32-bit image is the kernel's exec of the
	// same request, where that is the plan (byKernel).
	if plan.Compat && !byKernel {
		return fmt.Errorf("uexec backend: 32-bit images need a 32-bit stub: %w", errors.ErrUnsupported)
	}
	return nil
}

// start runs on the tracer thread. traced reports whether a tracee may be
// left attached (only if killing it failed).
func start(plan *execsw.Plan, opts *Options) (p *Process, err error, traced bool) {
	files := opts.Files
	if files == nil {
		files = []*os.File{os.Stdin, os.Stdout, os.Stderr}
	}
	fds := callerFDs(files, len(plan.Files))
	b := &builder{
		plan:     plan,
		noRandom: opts.NoRandom,
		rand:     randReader(opts.Rand),
		logf:     opts.Logf,
		fds:      map[*vm.File]int{},
		exe:      programFile(plan),
		sigMask:  opts.SigMask,
	}
	// The plan's files go to the stub as inherited descriptors after the
	// caller's: the image is mapped from the very files that were checked.
	// Descriptors this process holds without FD_CLOEXEC survive a kernel
	// exec, so they survive here too: the plan's files take numbers no
	// such descriptor uses, and only those are closed at the end.
	planFiles := planFileList(plan)
	var opened []*os.File
	defer func() {
		for _, f := range opened {
			f.Close()
		}
	}()
	if len(planFiles) > 0 {
		keep := inheritedFDs()
		first := len(fds)
		for {
			free := true
			for i := first; i < first+len(planFiles); i++ {
				free = free && !keep[i]
			}
			if free {
				break
			}
			first++
		}
		for i := len(fds); i < first; i++ {
			if keep[i] {
				fds = append(fds, uintptr(i))
			} else {
				fds = append(fds, ^uintptr(0))
			}
		}
		b.firstFD = first
		for _, f := range planFiles {
			h, err := hostFD(f)
			if err != nil {
				return nil, &Error{Step: "opening the plan's files", Err: err}, false
			}
			if h.opened != nil {
				opened = append(opened, h.opened)
			}
			b.fds[f] = len(fds)
			fds = append(fds, h.fd)
		}
	}
	// Inherited descriptors above the ones we pass stay as they are.

	to := &tracee.Options{
		Argv:     []string{"uexec-stub"},
		Env:      []string{},
		Dir:      opts.Dir,
		Files:    fds,
		Sys:      opts.Sys,
		NoRandom: opts.NoRandom,
	}
	if opts.tree != nil {
		// The tree is seized, so that its group-stops can be kept (and
		// its auto-attached children are seized too).
		to.Seize = treeOptions
	}
	t, err := startStub(to)
	if err != nil {
		return nil, &Error{Step: "starting the stub", Err: err}, false
	}
	b.r, b.pid, b.stubSP = t, t.Pid, t.Regs.Rsp
	if opts.tree != nil {
		// Every later exec of the process tree stops in the tracer: the
		// filter is installed before the program's first instruction.
		t.SetSyscallSite(stub.SyscallAddr)
		if err := opts.tree.prepare(t); err != nil {
			t.Kill()
			return nil, &Error{Pid: t.Pid, Step: "installing the exec filter", Err: err}, false
		}
	}
	proc, err := os.FindProcess(t.Pid)
	if err != nil {
		t.Kill()
		return nil, &Error{Pid: t.Pid, Step: "opening a pidfd", Err: err}, false
	}
	fail := func(err error) (*Process, error, bool) {
		e := &Error{Pid: t.Pid, Step: b.step, Err: err}
		if b.destroyed {
			e.Signal = syscall.SIGSEGV
			t.Crash(syscall.SIGSEGV)
		} else {
			t.Kill()
		}
		proc.Release()
		return nil, e, false
	}
	if err := b.run(); err != nil {
		return fail(err)
	}
	b.at("starting the program")
	regs := tracee.EntryRegs(uint64(b.entry), uint64(b.sp))
	if err := t.SetRegs(&regs); err != nil {
		return fail(err)
	}
	if opts.AtEntry != nil {
		// The program is complete and stopped at its first instruction.
		if err := opts.AtEntry(t.Pid); err != nil {
			return fail(err)
		}
	}
	if opts.tree != nil {
		// The tree's tracer keeps the program: the event loop resumes it.
		opts.tree.first = t
		return &Process{Pid: t.Pid, Notes: b.notes, Entry: b.entry, SP: b.sp, VDSO: b.vdso, Moved: b.moved, p: proc}, nil, true
	}
	if err := t.Detach(); err != nil {
		return fail(err)
	}
	return &Process{Pid: t.Pid, Notes: b.notes, Entry: b.entry, SP: b.sp, VDSO: b.vdso, Moved: b.moved, p: proc}, nil, false
}

// startStub starts the stub from its memfd, falling back to the cached file
// when the memfd cannot be executed.
func startStub(o *tracee.Options) (*tracee.Tracee, error) {
	path, err := StubPath()
	if err != nil {
		return nil, err
	}
	o.Path = path
	t, err := tracee.Start(o)
	if !stubs.memfdRefused(path, err) {
		return t, err
	}
	if o.Path, err = StubFile(); err != nil {
		return nil, err
	}
	return tracee.Start(o)
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

// inheritedFDs returns the descriptors of this process that a kernel exec
// would keep: those without FD_CLOEXEC.
func inheritedFDs() map[int]bool {
	keep := map[int]bool{}
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return keep
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	for _, n := range names {
		fd, err := strconv.Atoi(n)
		if err != nil || fd == int(d.Fd()) {
			continue
		}
		if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && fl&unix.FD_CLOEXEC == 0 {
			keep[fd] = true
		}
	}
	return keep
}
