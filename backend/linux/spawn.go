//go:build linux && amd64

package linux

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/execsw"
	"github.com/uexec/uexec/internal/planstub"
	"github.com/uexec/uexec/internal/sys"
	"github.com/uexec/uexec/internal/wire"
	"github.com/uexec/uexec/vm"
)

// spawn is spawnOnce, again where the kernel refused to execute the
// stub's memfd or launcher, which is then never tried again (the plan
// depends on the name the stub is exec'd by): at most twice more, the
// last with the stub file itself.
func spawn(plan *execsw.Plan, opts *Options) (*Process, error) {
	p, err := spawnOnce(plan, opts)
	for range 2 {
		if !errors.Is(err, errStubRefused) {
			break
		}
		if opts.Logf != nil {
			opts.Logf("note: %v: not tried again", err)
		}
		p, err = spawnOnce(plan, opts)
	}
	return p, err
}

// errStubRefused marks the error of a start whose exec of the stub's memfd
// or launcher the kernel refused (stubCache.refused).
var errStubRefused = errors.New("refused by the kernel")

// spawnOnce starts plan the way os/exec starts a program: fork, exec of the
// plan stub with the plan on a descriptor, and the stub builds the image
// itself. A pipe (close-on-exec in the program, so only the stub holds
// it) tells whether the stub got to the program: it is closed just before
// the jump, or carries the failed op and its result.
func spawnOnce(plan *execsw.Plan, opts *Options) (*Process, error) {
	filtered := sys.SeccompFiltered()
	if filtered && sys.CloseRefused() {
		// Go's fork and exec waits for the end of a pipe whose writing
		// end it then cannot close: it would wait forever.
		return nil, &Error{Step: "starting the stub", Err: fmt.Errorf("a seccomp filter of this process refuses close(2), which a fork and exec needs: %w", unix.EPERM)}
	}
	checkPidfd()
	files := opts.Files
	if files == nil {
		files = []*os.File{os.Stdin, os.Stdout, os.Stderr}
	}
	fds := callerFDs(files, len(plan.Files)+2)
	// The plan's files, the plan and the status pipe take numbers after
	// the caller's that no inherited descriptor uses: a kernel exec keeps
	// those, so the program gets them too.
	planFiles := planFileList(plan)
	var opened []*os.File
	defer func() {
		for _, f := range opened {
			f.Close()
		}
	}()
	env := &stubEnv{fds: map[*vm.File]int{}, noRandom: opts.NoRandom, rand: randReader(opts.Rand),
		exe: programFile(plan), setCreds: os.Geteuid() == 0, sigMask: opts.SigMask, logf: opts.Logf,
		vdso: vdsoOnce(), fexec: opts.Fexecve}
	if f := opts.Fexecve; f != nil && f.CloseOnExec {
		// The stub has it open for the kernel's exec; the program must not.
		env.closeFDs = append(env.closeFDs, f.FD)
	}
	persona, err := env.selfLimits(opts.NoRandom)
	if err != nil {
		return nil, &Error{Step: "reading the personality", Err: err}
	}
	// raw: the stub is started by vforkExec, not syscall.ForkExec (what
	// a SysProcAttr, a tracer at the entry or a tree's filter need is
	// Go's child's).
	raw := opts.Sys == nil && opts.AtEntry == nil && !opts.StopAtEntry && opts.notifySock == nil
	// onThread runs fork on the thread it must run on.
	onThread := func(fork func() (*Process, error, bool)) (*Process, error) {
		if raw || env.selfPersona == persona && opts.AtEntry == nil && !opts.StopAtEntry {
			// Nothing is this thread's: fork from here.
			p, err, _ := fork()
			return p, err
		}
		// The persona (and, with AtEntry, the tracer) is this thread's.
		return onNewThread(fork)
	}
	// The kernel's exec of opts.Path is the plan only when the plan is
	// not extended (an emulation root).
	byKernel := opts.Path != "" && plan.Extended == ""
	setID := setIDKernelNote(plan, persona, env.rlimit)
	kernelWhy := "" // why the kernel makes the exec, if it does
	if byKernel && (!env.canSetExeFD() || opts.KernelExact || plan.Compat || setID != "" || filtered || plan.KernelOnly != "") {
		// The plan is the kernel's own exec: only the kernel can make
		// /proc/PID/exe the program's here, build a 32-bit image, lay
		// a set-id image out as its credentials decide, or be sure to
		// pass this process's seccomp filters (the stub's calls are
		// not the program's).
		kernelWhy = kernelExeNote
		switch {
		case plan.KernelOnly != "":
			kernelWhy = plan.KernelOnly
		case setID != "":
			kernelWhy = setID
		case plan.Compat:
			kernelWhy = compatNote
		case filtered:
			kernelWhy = filteredNote
		case env.canSetExeFD() && opts.notifySock == nil:
			kernelWhy = kernelAskedNote
		case env.canSetExeFD():
			kernelWhy = kernelExactNote
		}
		if kernelInstead(plan, opts) && !opts.StopAtEntry && opts.AtEntry == nil {
			// The stub would have nothing to do but its execve of the
			// program: the fork's own exec of it is the same exec, with
			// one exec less (as os/exec makes it), and nothing of the
			// stub's to set up. Under filters it also keeps the stub's
			// calls from being judged.
			return onThread(func() (*Process, error, bool) {
				return forkStub("", nil, fds, len(files), plan, nil, opts, persona, func() {}, -1, kernelWhy)
			})
		}
	}
	slot := func(fd uintptr) int {
		for inherited(len(fds)) {
			fds = append(fds, uintptr(len(fds)))
		}
		fds = append(fds, fd)
		return len(fds) - 1
	}
	for _, f := range planFiles {
		if opts.byName {
			if env.byName == nil {
				env.byName = map[*vm.File]string{}
			}
			env.byName[f] = f.Name()
			continue
		}
		h, err := hostFD(f)
		if err != nil {
			return nil, &Error{Step: "opening the plan's files", Err: err}
		}
		if h.opened != nil {
			opened = append(opened, h.opened)
		}
		n := slot(h.fd)
		env.fds[f] = n
		env.closeFDs = append(env.closeFDs, n)
	}
	if opts.notifySock != nil {
		env.notify, env.notifySock = true, slot(opts.notifySock.Fd())
		env.noNewPrivs = TreeNoNewPrivs()
	}
	// Raw descriptors, not os.Pipe, read with a blocking read(2) as
	// os/exec reads its own pipe: the poller's registration of both ends,
	// their non-blocking modes, closes and wake-up made a Spawn 11 system
	// calls longer (strace -c of BenchmarkSpawn).
	var pipe [2]int
	if err := unix.Pipe2(pipe[:], unix.O_CLOEXEC); err != nil {
		return nil, &Error{Step: "making the status pipe", Err: os.NewSyscallError("pipe2", err)}
	}
	sr, sw := pipe[0], pipe[1]
	defer unix.Close(sr)
	closeSW := sync.OnceFunc(func() { unix.Close(sw) })
	defer closeSW()
	env.statusFD = slot(uintptr(sw))
	env.closeFDs = append(env.closeFDs, env.statusFD)
	planFD := len(fds) // placeholder: the memfd goes here
	for inherited(planFD) {
		planFD++
	}

	stubPath, err := planStub.path()
	if err != nil {
		return nil, &Error{Step: "materialising the stub", Err: err}
	}
	argv := []string{stubArgv0, strconv.Itoa(planFD)}
	env.stubArgs = stringsLen(stubPath, argv, nil)
	var cp *compiled
	if raw && env.sigMask == nil {
		// vforkExec's child blocks every signal: the stub sets the
		// mask Go's child would have restored.
		var m unix.Sigset_t
		if err := unix.PthreadSigmask(unix.SIG_BLOCK, nil, &m); err != nil {
			return nil, &Error{Step: "reading the signal mask", Err: err}
		}
		env.sigMask = &m.Val[0]
	}
	if kernelWhy != "" {
		// Root's filter sets PF_SUPERPRIV in the stub: a fork clears it.
		env.cloneProgram = env.notify && !env.noNewPrivs && opts.Sys == nil && !opts.StopAtEntry && opts.AtEntry == nil
		cp, err = compileKernelExec(opts.Path, opts.Argv, opts.Env, env, kernelWhy)
	} else if cp, err = compile(plan, env); errors.Is(err, errKernelOnly) && byKernel {
		cp, err = compileKernelExec(opts.Path, opts.Argv, opts.Env, env, fmt.Sprintf("%v: the kernel execs the program", err))
	}
	if err != nil {
		return nil, &Error{Step: "compiling the plan", Err: err}
	}
	cp.raw = raw
	if env.noNewPrivs {
		cp.notes = append(cp.notes, "no_new_privs: an ordinary user's tree needs it for its seccomp filter, so set-id bits and file capabilities are ignored in the whole tree")
	}
	for _, n := range cp.notes {
		if opts.Logf != nil {
			opts.Logf("note: %s", n)
		}
	}
	if opts.Logf != nil {
		opts.Logf("stub program:\n%s", cp.prog)
	}
	if i := opts.failAt - 1; i >= 0 && i < len(cp.prog.Ops) {
		cp.prog.Ops[i] = wire.Op{Kind: wire.Syscall, Nr: 1 << 20, Name: "injected failure"}
	}
	pfd, err := planDescriptor(cp.encode())
	if err != nil {
		return nil, &Error{Step: "writing the plan", Err: err}
	}
	defer unix.Close(pfd)
	step("build:compiled")
	for len(fds) < planFD {
		fds = append(fds, uintptr(len(fds)))
	}
	fds = append(fds, uintptr(pfd))

	defer cp.release()
	return onThread(func() (*Process, error, bool) {
		return forkStub(stubPath, argv, fds, len(files), plan, cp, opts, persona, closeSW, sr, "")
	})
}

// forkStub forks and execs the stub, and waits until it entered the
// program or died; or, with direct (why the kernel makes the exec), forks
// and execs the program. traced reports whether a tracee may be left
// attached. The first callerN of fds are the caller's descriptors.
func forkStub(path string, argv []string, fds []uintptr, callerN int, plan *execsw.Plan, cp *compiled, opts *Options,
	persona uint32, closeSW func(), sr int, direct string) (p *Process, err error, traced bool) {
	var spa syscall.SysProcAttr
	if opts.Sys != nil {
		spa = *opts.Sys
	}
	spa.Ptrace = opts.AtEntry != nil || opts.StopAtEntry
	attr := &syscall.ProcAttr{Dir: opts.Dir, Env: []string{}, Files: fds, Sys: &spa}
	old, err := sys.Personality(sys.PersonalityQuery)
	if err != nil {
		return nil, &Error{Step: "starting the stub", Err: err}, false
	}
	forkExec := func(path string, argv []string, attr *syscall.ProcAttr) (int, error) {
		if persona != old {
			if _, err := sys.Personality(persona); err != nil {
				return 0, err
			}
			defer sys.Personality(old)
		}
		return syscall.ForkExec(path, argv, attr)
	}
	// afterFork sorts the fork's result out: a stub the kernel refused,
	// or the kernel's exec of the program instead of the stub's (kernel
	// says why).
	afterFork := func(pid int, err error) (int, string, error) {
		kernel := ""
		if err != errMDWE && err != errDirect && planStub.refused(path, err) {
			err = fmt.Errorf("%w: %w", err, errStubRefused)
		} else if err == errDirect || err != nil && !spa.Ptrace && (errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM)) {
			// A sandbox's exec rules (Landlock, an LSM) refuse the stub,
			// or its filters would judge the stub's calls (direct).
			if !kernelInstead(plan, opts) {
				err = fmt.Errorf("executing the stub %s: %w", path, err)
			} else {
				// The plan is the kernel's own exec of what the caller
				// asked for: the kernel makes it, as os/exec would.
				kernel = fmt.Sprintf("the stub could not be executed (%v): the kernel execs the program", err)
				if err == errDirect {
					kernel = direct
				}
				attr.Env, attr.Files = opts.Env, fds[:callerN]
				if pid, err = forkExec(opts.Path, opts.Argv, attr); err != nil {
					return 0, "", &Error{Step: "the kernel's exec of " + opts.Path, Err: err}
				}
			}
		}
		if err != nil {
			return 0, "", &Error{Step: "starting the stub", Err: err}
		}
		return pid, kernel, nil
	}
	// kernelProcess is the process of the kernel's exec of the program.
	kernelProcess := func(pid int, kernel string) (*Process, error, bool) {
		proc, err := os.FindProcess(pid)
		if err != nil {
			unix.Kill(pid, unix.SIGKILL)
			reap(pid)
			return nil, &Error{Pid: pid, Step: "opening a pidfd", Err: err}, false
		}
		if opts.Logf != nil {
			opts.Logf("note: %s", kernel)
		}
		return &Process{Pid: pid, Kernel: kernel, p: proc}, nil, false
	}
	var pid int
	// child, vforkExec's, reads this process's memory until its exec.
	var child *vforkChild
	defer func() { runtime.KeepAlive(child) }()
	if err = errDirect; direct == "" {
		// An image built, here or in the tree the stub starts.
		builds := cp.kernel == "" || opts.notifySock != nil && !opts.KernelExact
		if err = stubRunsHere(path, builds); err == nil {
			nofile, ok := (*unix.Rlimit)(nil), false
			if cp != nil && cp.raw {
				nofile, ok = childNofile()
			}
			switch {
			case ok:
				p := -1
				if persona != old {
					p = int(persona)
				}
				if child, err = vforkExec(path, argv, opts.Dir, fds, p, nofile); err == nil {
					pid = child.pid
				}
			case cp != nil && cp.raw:
				// Forked from any thread (onThread): the persona set
				// for the fork must stay this one's.
				runtime.LockOSThread()
				pid, err = forkExec(path, argv, attr)
				runtime.UnlockOSThread()
			default:
				pid, err = forkExec(path, argv, attr)
			}
		}
	}
	closeSW()
	step("build:forked")
	pid, kernel, err := afterFork(pid, err)
	if err != nil {
		return nil, err, false
	}
	if kernel != "" {
		return kernelProcess(pid, kernel)
	}
	proc, err := os.FindProcess(pid)
	if err != nil {
		// Neither the stub nor a child still in this memory is left.
		unix.Kill(pid, unix.SIGKILL)
		reap(pid)
		return nil, &Error{Pid: pid, Step: "opening a pidfd", Err: err}, false
	}
	out := &Process{Pid: pid, Notes: cp.notes, Kernel: cp.kernel, p: proc, cloned: cp.cloned}
	if opts.NoRandom {
		out.SP = cp.sp
	}
	if opts.AtEntry != nil || opts.StopAtEntry {
		// A stub that never gets to the entry must not hold us.
		watchdog := time.AfterFunc(entryTimeout, func() { unix.Kill(pid, unix.SIGKILL) })
		regs, err := runToEntryOpts(pid, opts.StopAtEntry && yamaRestricted(), cp.entryWords)
		watchdog.Stop()
		if err == nil {
			out.Entry, out.SP = vm.Addr(regs.Rip), vm.Addr(regs.Rsp)
			if opts.AtEntry != nil {
				err = opts.AtEntry(pid)
			}
		}
		if err != nil {
			unix.Kill(pid, unix.SIGKILL)
			var ws unix.WaitStatus
			unix.Wait4(pid, &ws, 0, nil)
			proc.Release()
			return nil, &Error{Pid: pid, Step: "running the stub to the entry", Err: err}, false
		}
		if opts.StopAtEntry {
			if err := detachStopped(pid); err != nil {
				return nil, &Error{Pid: pid, Step: "detaching", Err: err}, true
			}
		} else if err := unix.PtraceDetach(pid); err != nil {
			return nil, &Error{Pid: pid, Step: "detaching", Err: err}, true
		}
	}
	if err := stubStatus(fdReader(sr), cp.prog); err != nil {
		var ws unix.WaitStatus
		unix.Wait4(pid, &ws, 0, nil)
		proc.Release()
		e := &Error{Pid: pid, Step: "building the image", Err: err}
		if ws.Signaled() {
			e.Signal = ws.Signal()
		}
		var se *stubError
		if errors.As(err, &se) {
			e.Step, e.Err = se.step, se.err
		}
		return nil, e, false
	}
	if child != nil {
		// The status pipe's end: the child got to the program, or
		// ended before its exec of the stub.
		if err := child.failure(); err != nil {
			proc.Release()
			pid, kernel, err := afterFork(0, err)
			if err != nil {
				return nil, err, false
			}
			return kernelProcess(pid, kernel)
		}
	}
	return out, nil, false
}

// errDirect: the kernel execs the program, with no stub (spawn's direct).
var errDirect = errors.New("the kernel execs the program directly")

// errMDWE: the stub builds no image where this process is under
// memory-deny-write-execute: an image may need a mapping both writable
// and executable (an executable stack), which the kernel's exec makes
// there but mprotect(2) refuses, and a stub exec'd as itself (a memfd's,
// a tree's copy) first maps its copy of itself so.
var errMDWE = fmt.Errorf("memory-deny-write-execute is on (prctl PR_SET_MDWE, MemoryDenyWriteExecute=): uexec's stub cannot build an image under it: %w", unix.EACCES)

// stubRunsHere returns errMDWE where the stub at path could not run in a
// process this one starts: under memory-deny-write-execute it runs only as
// its launcher's interpreter, which maps nothing writable and executable,
// and only where no image is built (builds), by it or in the tree it
// starts (whose builds run copies of the stub).
func stubRunsHere(path string, builds bool) error {
	if sys.MDWE() && (builds || !planStub.isLauncher(path)) {
		return errMDWE
	}
	return nil
}

// kernelInstead says whether, where a sandbox refuses the stub, the
// kernel's exec of opts.Path gives what the stub would have built: the plan
// is the kernel's own exec (not through an emulation root, a binfmt rule
// or veriexec's pinned files) of a path, with nothing the stub would have
// set up but what os/exec sets up too.
func kernelInstead(plan *execsw.Plan, opts *Options) bool {
	return plan.Extended == "" && opts.Path != "" && opts.Fexecve == nil && opts.SigMask == nil && opts.notifySock == nil
}

// checkPidfd makes os's first use of pidfds happen before a child of ours
// may be stopped by its job: os checks, once, that clone(CLONE_PIDFD) works
// by a vfork whose child exits at once, and that check in os.FindProcess
// came after the stub's fork. A stop of the job (SIGTTIN of the program's
// background read, ^Z) that caught the check's child then left its parent
// thread in the vfork's wait, which takes no part in a stop: uexec never
// stopped and the shell waited for it forever.
var checkPidfd = sync.OnceFunc(func() {
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		p.Release()
	}
})

// stubError is a failure the stub reported.
type stubError struct {
	step string
	err  error
}

func (e *stubError) Error() string { return e.step + ": " + e.err.Error() }
func (e *stubError) Unwrap() error { return e.err }

// stubStatus reads the status pipe to its end: nothing means the stub
// entered the program.
func stubStatus(r io.Reader, prog *wire.Program) error {
	var rec [16]byte
	n, err := io.ReadFull(r, rec[:])
	if n == 0 && (err == io.EOF || err == nil) {
		return nil
	}
	if n < len(rec) {
		return fmt.Errorf("the stub died before it entered the program: %w", unix.EFAULT)
	}
	step := int64(binary.LittleEndian.Uint64(rec[:]))
	res := int64(binary.LittleEndian.Uint64(rec[8:]))
	name := "starting"
	if step >= 0 && step < int64(len(prog.Ops)) {
		name = prog.Ops[step].Name
		if name == "" {
			name = prog.Ops[step].Kind.String()
		}
	}
	var e error = syscall.Errno(-res)
	if res >= 0 || res < -4095 {
		e = fmt.Errorf("result %#x: %w", uint64(res), unix.EFAULT)
	}
	return &stubError{step: fmt.Sprintf("stub op %d (%s)", step, name), err: e}
}

// fdReader reads a descriptor with read(2), blocking its thread.
type fdReader int

func (r fdReader) Read(b []byte) (int, error) {
	for {
		n, err := unix.Read(int(r), b)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return 0, os.NewSyscallError("read", err)
		case n == 0 && len(b) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// planDescriptor returns a descriptor holding the plan b for the stub: a
// pipe holding all of it, its writing end closed, where b fits one
// (planstub.PipePlanMax, and the pipe's capacity: a user over
// pipe-user-pages-soft gets one page), else a sealed memfd. The pipe takes
// 7 us to make where the memfd takes 14 (BenchmarkSteps: plan-fd, memfd):
// no shmem inode to make and seal, 2 system calls fewer; its writing end
// closed, nobody can change the plan either.
func planDescriptor(b []byte) (int, error) {
	if len(b) <= planstub.PipePlanMax {
		var p [2]int
		// Non-blocking: a write that does not fit fails at once.
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err == nil {
			n, err := unix.Write(p[1], b)
			unix.Close(p[1])
			if err == nil && n == len(b) {
				return p[0], nil
			}
			unix.Close(p[0])
		}
	}
	return planMemfd(b)
}

// planMemfd returns a sealed memfd holding b.
func planMemfd(b []byte) (int, error) {
	fd, err := memfdFD("uexec-plan")
	if err != nil {
		return -1, err
	}
	if err := sealFD(fd, b); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// newMemfd returns an empty memfd that can be sealed and never executed.
func newMemfd(name string) (*os.File, error) {
	fd, err := memfdFD(name)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}

// memfdFD is newMemfd's descriptor.
func memfdFD(name string) (int, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING|unix.MFD_NOEXEC_SEAL)
	if err == unix.EINVAL {
		fd, err = unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	}
	if err != nil {
		return -1, os.NewSyscallError("memfd_create", err)
	}
	return fd, nil
}

// fillMemfd writes b to the memfd f and seals it: nobody, not even we, may
// change it from then on.
func fillMemfd(f *os.File, b []byte) error { return sealFD(int(f.Fd()), b) }

// sealFD is fillMemfd of the descriptor fd.
func sealFD(fd int, b []byte) error {
	for off := 0; off < len(b); {
		n, err := unix.Pwrite(fd, b[off:], int64(off))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return os.NewSyscallError("pwrite", err)
		}
		off += n
	}
	_, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_WRITE|unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_SEAL)
	return os.NewSyscallError("fcntl(F_ADD_SEALS)", err)
}

// stringsLen is the bytes an exec copies to the new stack as strings: the
// file name, argv and envp, each with its NUL.
func stringsLen(execfn string, argv, envp []string) int {
	n := len(execfn) + 1
	for _, s := range argv {
		n += len(s) + 1
	}
	for _, s := range envp {
		n += len(s) + 1
	}
	return n
}

// runToEntryOpts follows a stub started under PTRACE_TRACEME to the
// program's first instruction: system call stops up to the stub's last
// munmap (of its own copy), then single steps through the vdso's tail
// and the image's bytes that set rflags until the entry (entryWords:
// compiled's). It returns the registers there. With anyPtracer the stub
// first calls prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY) (Yama, see
// allowAnyPtracer).
//
// Preconditions: the calling goroutine is locked to its OS thread, the one
// that forked pid.
// A stub that hands the exec to the kernel (compileKernelExec) reaches the
// entry at the exit of its execve: the kernel's own first instruction.
func runToEntryOpts(pid int, anyPtracer bool, entryWords int) (*unix.PtraceRegs, error) {
	var ws unix.WaitStatus
	wait := func(what string) error {
		if _, err := unix.Wait4(pid, &ws, unix.WALL, nil); err != nil {
			return os.NewSyscallError("wait4", err)
		}
		if !ws.Stopped() {
			return fmt.Errorf("pid %d: status %#x while waiting for %s: %w", pid, uint32(ws), what, unix.ECHILD)
		}
		return nil
	}
	if err := wait("the exec of the stub"); err != nil {
		return nil, err
	}
	// TRACEEXEC: an execve of the stub stops at an event, with no legacy
	// SIGTRAP left pending for the program.
	if err := unix.PtraceSetOptions(pid, unix.PTRACE_O_EXITKILL|unix.PTRACE_O_TRACESYSGOOD|unix.PTRACE_O_TRACEEXEC); err != nil {
		return nil, os.NewSyscallError("ptrace(PTRACE_SETOPTIONS)", err)
	}
	return followToEntry(pid, anyPtracer, true, entryWords, wait, &ws)
}

// followToEntry follows the traced stub pid, in a stop at its exec, to the
// program's first instruction: see runToEntry. entering: the next system
// call stop is an entry (false at an exec event, whose exit comes next).
// entryWords is compiled's. wait waits for pid's next stop into *wsp.
func followToEntry(pid int, anyPtracer, entering bool, entryWords int, wait func(string) error, wsp *unix.WaitStatus) (*unix.PtraceRegs, error) {
	var regs unix.PtraceRegs
	execed := false
	for {
		if err := unix.PtraceSyscall(pid, 0); err != nil {
			return nil, os.NewSyscallError("ptrace(PTRACE_SYSCALL)", err)
		}
		if err := wait("the stub's system calls"); err != nil {
			return nil, err
		}
		ws := *wsp
		if ws.StopSignal() == syscall.SIGTRAP && ws.TrapCause() == unix.PTRACE_EVENT_EXEC {
			execed = true // its syscall-exit stop comes next
			continue
		}
		if ws.StopSignal() != syscall.SIGTRAP|0x80 {
			return nil, fmt.Errorf("pid %d: the stub stopped with %v: %w", pid, ws.StopSignal(), unix.EFAULT)
		}
		if err := unix.PtraceGetRegs(pid, &regs); err != nil {
			return nil, os.NewSyscallError("ptrace(PTRACE_GETREGS)", err)
		}
		if entering && anyPtracer {
			if err := allowAnyPtracer(pid, &regs, wait); err != nil {
				return nil, err
			}
			anyPtracer = false
		}
		if execed {
			return &regs, nil
		}
		last := regs.Orig_rax == unix.SYS_MUNMAP && regs.Rdi == planstub.ReservedStart
		if !entering && last {
			break
		}
		entering = !entering
	}
	// The munmap returns to the entry, or to the image's bytes that set
	// rflags (gadget.go) with the words they pop above: the entry is the
	// word below the initial stack pointer, entryWords words up.
	sp := regs.Rsp + 8*uint64(entryWords)
	var word [8]byte
	if _, err := unix.PtracePeekData(pid, uintptr(sp-8), word[:]); err != nil {
		return nil, os.NewSyscallError("ptrace(PTRACE_PEEKDATA)", err)
	}
	entry := binary.LittleEndian.Uint64(word[:])
	popf := false // stepped over the image's popfq
	for i := 0; i < 64; i++ {
		var insn [1]byte
		if _, err := unix.PtracePeekData(pid, uintptr(regs.Rip), insn[:]); err != nil {
			return nil, os.NewSyscallError("ptrace(PTRACE_PEEKDATA)", err)
		}
		popf = popf || insn[0] == 0x9d
		if err := unix.PtraceSingleStep(pid); err != nil {
			return nil, os.NewSyscallError("ptrace(PTRACE_SINGLESTEP)", err)
		}
		if err := wait("a single step"); err != nil {
			return nil, err
		}
		if err := unix.PtraceGetRegs(pid, &regs); err != nil {
			return nil, os.NewSyscallError("ptrace(PTRACE_GETREGS)", err)
		}
		if regs.Rip != entry || regs.Rsp != sp {
			continue
		}
		if popf {
			// The kernel took the trap flag it set for the step
			// after popfq for the program's own (arch/x86/kernel/
			// step.c: TIF_FORCED_TF is cleared over a popf), so it
			// would outlive the detach: the program's is 0x202.
			regs.Eflags &^= eflagsTF
			if err := unix.PtraceSetRegs(pid, &regs); err != nil {
				return nil, os.NewSyscallError("ptrace(PTRACE_SETREGS)", err)
			}
		}
		return &regs, nil
	}
	return nil, fmt.Errorf("pid %d: not at the entry %#x 64 steps after the stub's last munmap: %w", pid, entry, unix.EFAULT)
}

// inherited reports whether this process's descriptor fd survives an exec:
// it is open without FD_CLOEXEC.
func inherited(fd int) bool {
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	return err == nil && fl&unix.FD_CLOEXEC == 0
}

// canSetExeFD reports whether this process (and so a stub it starts) may
// set exe_fd with prctl(PR_SET_MM_MAP): CAP_SYS_ADMIN or
// CAP_CHECKPOINT_RESTORE in its user namespace.
func canSetExeFD() bool {
	var hdr = unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	has := func(c uint) bool { return data[c/32].Effective&(1<<(c%32)) != 0 }
	return has(unix.CAP_SYS_ADMIN) || has(unix.CAP_CHECKPOINT_RESTORE)
}

// EntryFlags returns rflags at the first instruction of plan's program
// built by the stub: the kernel's 0x202 (IF and the reserved bit) where
// the image has bytes the stub enters it through that set them so
// (gadget.go), else with ZF and PF set, which the register clears of the
// vdso's `syscall ... ret` tail leave behind (see internal/planstub).
// Every other register is the kernel's.
func EntryFlags(plan *execsw.Plan) uint64 {
	if sp, aligned := planSP(plan); sp != 0 {
		if _, ok := findFlagsGadget(plan, sp, aligned); ok {
			return 0x202
		}
	}
	return 0x246
}

// selfLimits fills in the personality (with or without ADDR_NO_RANDOMIZE)
// and RLIMIT_STACK a stub started by this process runs with, and returns
// the personality; selfPersona is this thread's.
func (env *stubEnv) selfLimits(noRandom bool) (uint32, error) {
	persona, err := sys.Personality(sys.PersonalityQuery)
	if err != nil {
		return 0, err
	}
	env.selfPersona = persona
	persona &^= sys.ADDR_NO_RANDOMIZE
	if noRandom {
		persona |= sys.ADDR_NO_RANDOMIZE
	}
	env.persona = persona
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_STACK, &rl); err == nil {
		env.rlimit = rl.Cur
	}
	return persona, nil
}

// callerFDs returns the descriptors files become in a child (0, 1, 2, ...;
// a nil file leaves its number closed, and so do 0, 1 and 2 when files
// are fewer, as os.StartProcess leaves them), with room for extra more.
func callerFDs(files []*os.File, extra int) []uintptr {
	fds := make([]uintptr, 0, len(files)+extra+3)
	for _, f := range files {
		if f == nil {
			fds = append(fds, ^uintptr(0))
			continue
		}
		fds = append(fds, f.Fd())
	}
	for len(fds) < 3 {
		fds = append(fds, ^uintptr(0))
	}
	return fds
}

// randReader is r, or the exec randomness of this process when r is nil.
func randReader(r io.Reader) io.Reader {
	if r == nil {
		return sys.Random
	}
	return r
}
