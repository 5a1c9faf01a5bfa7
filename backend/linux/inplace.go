//go:build linux && amd64

package linux

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/execsw"
	"github.com/uexec/uexec/internal/sys"
	"github.com/uexec/uexec/vm"
)

// InPlaceOptions say how ExecInPlace runs a plan.
type InPlaceOptions struct {
	// Path, Argv and Env are the exec as requested: the kernel does it
	// with them when uexec cannot do it exactly (a set-id program that
	// this process could not give its privileges).
	Path string
	Argv []string
	Env  []string
	// Dir, when set, is the program's working directory.
	Dir string
	// NoRandom and SigMask are as in Options.
	NoRandom bool
	SigMask  *uint64
	// Logf, when set, receives the notes and the stub's program.
	Logf func(format string, args ...any)
	// BeforeExec, when set, is called once, just before the exec that
	// replaces this process, with why the kernel makes the exec as
	// requested ("" when the stub builds the image).
	BeforeExec func(kernel string)
	// KernelExact is Options.KernelExact: the kernel execs Path in place
	// wherever the plan is its own exec.
	KernelExact bool
}

// ExecInPlace replaces this process with the plan's program, as execve(2)
// replaces its caller: it execs the plan stub, which builds the image and
// jumps to it, so the program keeps this process's pid, parent, process
// group, session, terminal, limits and the descriptors that are not
// close-on-exec. It returns only if the stub could not be exec'd; the
// process is then intact. Past the stub's exec a failure kills the process
// with SIGSEGV, as Linux does past the point of no return.
func ExecInPlace(plan *execsw.Plan, opts *InPlaceOptions) error {
	if err := runnable(plan, opts.Path != "" && plan.Extended == ""); err != nil {
		return err
	}
	if opts.Dir != "" {
		if err := os.Chdir(opts.Dir); err != nil {
			return &Error{Pid: os.Getpid(), Step: "changing directory", Err: err}
		}
	}
	told := false // once: a refused memfd is tried again
	before := func(kernel string) {
		if opts.BeforeExec != nil && !told {
			told = true
			opts.BeforeExec(kernel)
		}
	}
	persona, err := sys.Personality(sys.PersonalityQuery)
	if err != nil {
		return &Error{Pid: os.Getpid(), Step: "reading the personality", Err: err}
	}
	if opts.NoRandom {
		persona |= sys.ADDR_NO_RANDOMIZE
	}
	var rl unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_STACK, &rl)
	why := kernelExecInPlace(plan, persona, rl.Cur)
	if why == "" && opts.KernelExact {
		why = kernelAskedNote
	}
	if why == "" && plan.Extended == "" {
		if pid := sys.TracerPid(); pid != 0 {
			// A debugger or strace follows the exec it sees: the
			// kernel's is the program's (its exec event, file and
			// symbols), the stub's would be the launcher's.
			why = fmt.Sprintf("uexec is traced (by pid %d): the kernel execs the program, whose exec its tracer then sees as natively", pid)
		}
	}
	if why != "" && opts.Path != "" && plan.Extended == "" {
		if opts.Logf != nil {
			opts.Logf("note: %s", why)
		}
		before(why)
		return execKernel(opts, persona)
	}
	env := &stubEnv{fds: map[*vm.File]int{}, statusFD: -1, noRandom: opts.NoRandom, rand: randReader(nil),
		exe: programFile(plan), setCreds: os.Geteuid() == 0, sigMask: opts.SigMask, logf: opts.Logf, vdso: vdsoOnce()}
	var dups []int
	fail := func(step string, err error) error {
		for _, fd := range dups {
			unix.Close(fd)
		}
		return &Error{Pid: os.Getpid(), Step: step, Err: err}
	}
	// Descriptors without FD_CLOEXEC survive the exec of the stub.
	dup := func(fd uintptr) (int, error) {
		n, err := unix.FcntlInt(fd, unix.F_DUPFD, 3)
		if err != nil {
			return -1, os.NewSyscallError("fcntl(F_DUPFD)", err)
		}
		dups = append(dups, n)
		return n, nil
	}
	for _, f := range planFileList(plan) {
		h, err := hostFD(f)
		if err != nil {
			return fail("opening the plan's files", err)
		}
		n, err := dup(h.fd)
		if h.opened != nil {
			h.opened.Close()
		}
		if err != nil {
			return fail("opening the plan's files", err)
		}
		env.fds[f] = n
		env.closeFDs = append(env.closeFDs, n)
	}
	if persona, err = env.selfLimits(opts.NoRandom); err != nil {
		return fail("reading the personality", err)
	}
	stubPath, err := planStub.path()
	if err != nil {
		return fail("materialising the stub", err)
	}
	byKernel := opts.Path != "" && plan.Extended == ""
	refused := stubRunsHere(stubPath, true)
	if refused != nil && !byKernel {
		// Past the exec of the stub it would die: refused before.
		return fail("executing the stub", refused)
	}
	if refused == nil && byKernel && opts.BeforeExec != nil {
		// BeforeExec's log line must say who makes the exec, so a
		// refusal is asked before it (execveat(AT_EXECVE_CHECK), ~40 µs
		// a cold exec); without one, the refused exec itself says it.
		if err := sys.ExecCheck(stubPath); errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
			refused = errors.Unwrap(err)
		}
	}
	// kernelInstead has the kernel exec the program when the stub cannot
	// run here or a sandbox's exec rules (Landlock, an LSM) refuse it: the
	// plan is then the kernel's own exec, which they judge.
	kernelInstead := func(refused error) error {
		fail("", nil) // closes the plan's descriptors
		note := fmt.Sprintf("the stub could not be executed (%v): the kernel execs the program", refused)
		if opts.Logf != nil {
			opts.Logf("note: %s", note)
		}
		before(note)
		return execKernel(opts, persona)
	}
	if refused != nil {
		return kernelInstead(refused)
	}
	// The plan's memfd is made first, so that its number (in the stub's
	// argv, whose length the plan depends on) is known when compiling.
	mfd, err := newMemfd("uexec-plan")
	if err != nil {
		return fail("writing the plan", err)
	}
	n, err := dup(mfd.Fd())
	if err != nil {
		mfd.Close()
		return fail("writing the plan", err)
	}
	argv := []string{stubArgv0, strconv.Itoa(n)}
	exec := func(stubPath string) error {
		env.stubArgs = stringsLen(stubPath, argv, nil)
		cp, err := compile(plan, env)
		if errors.Is(err, errKernelOnly) && opts.Path != "" && plan.Extended == "" {
			// The kernel's exec of the program is the same exec.
			note := fmt.Sprintf("%v: the kernel execs the program", err)
			if opts.Logf != nil {
				opts.Logf("note: %s", note)
			}
			before(note)
			return execKernel(opts, persona)
		}
		if err != nil {
			return fail("compiling the plan", err)
		}
		if err := fillMemfd(mfd, cp.prog.Encode()); err != nil {
			return fail("writing the plan", err)
		}
		if opts.Logf != nil {
			for _, note := range cp.notes {
				opts.Logf("note: %s", note)
			}
		}
		step("once:compiled")
		before("")
		err = execAs(persona, stubPath, argv, []string{})
		var be *Error
		if errors.As(err, &be) {
			return fail(be.Step, be.Err)
		}
		return err
	}
	err = exec(stubPath)
	if planStub.refused(stubPath, err) {
		// The stub file itself, with the plan compiled again for its
		// name. A sealed memfd cannot be written again: a new one takes
		// the same number.
		mfd.Close()
		if mfd, err = newMemfd("uexec-plan"); err != nil {
			return fail("writing the plan", err)
		}
		if err = unix.Dup3(int(mfd.Fd()), n, 0); err != nil {
			mfd.Close()
			return fail("writing the plan", os.NewSyscallError("dup3", err))
		}
		if stubPath, err = planStub.filePath(); err != nil {
			mfd.Close()
			return fail("materialising the stub", err)
		}
		err = exec(stubPath)
	}
	mfd.Close()
	var be *Error
	if errors.As(err, &be) {
		return err
	}
	if byKernel && !told && (errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM)) {
		return kernelInstead(errors.Unwrap(err))
	}
	return fail("executing the stub", err)
}

// execKernel is the kernel's exec in place of the exec as requested, under
// persona (ADDR_NO_RANDOMIZE for NoRandom, as the stub's exec would have
// had it): it returns only on failure.
func execKernel(opts *InPlaceOptions, persona uint32) error {
	err := execAs(persona, opts.Path, opts.Argv, opts.Env)
	var be *Error
	if !errors.As(err, &be) {
		be = &Error{Step: "executing " + opts.Path, Err: err}
	}
	be.Pid = os.Getpid()
	return be
}

// execAs execs path under the personality persona, which is the calling
// thread's: where it differs from the thread's own, the exec comes from the
// thread that set it (locking costs the runtime a thread, so only then),
// and the personality is restored if the exec fails. A failure of the exec
// is execve's *os.SyscallError, one of the personality's an *Error.
func execAs(persona uint32, path string, argv, envv []string) error {
	old, err := sys.Personality(sys.PersonalityQuery)
	if err != nil {
		return &Error{Step: "reading the personality", Err: err}
	}
	if old == persona {
		return os.NewSyscallError("execve", unix.Exec(path, argv, envv))
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if _, err := sys.Personality(persona); err != nil {
		return &Error{Step: "setting the personality", Err: err}
	}
	err = unix.Exec(path, argv, envv)
	_, _ = sys.Personality(old)
	return os.NewSyscallError("execve", err)
}

// setIDKernelNote says why a set-id exec, or one of a program with file
// capabilities, by a caller with personality persona and stack limit
// rlimit (soft) must be the kernel's: "" when the stub, exec'd with them,
// can make it. Only the kernel's exec gives file capabilities; and Linux
// changes the personality and the limit of a set-id exec once it knows the
// credentials, before it lays the image out (begin_new_exec), where the
// stub's own exec has laid its space out (randomisation, mmap layout,
// mmap_base) with the caller's.
func setIDKernelNote(plan *execsw.Plan, persona uint32, rlimit uint64) string {
	switch {
	case plan.Cred.FileCaps:
		return "file capabilities: only the kernel's exec gives them, so it does the exec"
	case plan.Cred.PerClear && persona&sys.PER_CLEAR_ON_SETID != 0:
		return fmt.Sprintf("set-id: the exec clears the personality flags %#x (PER_CLEAR_ON_SETID), so the kernel does it", persona&sys.PER_CLEAR_ON_SETID)
	case plan.Cred.Secure && rlimit > stkLim:
		return "a secure exec lowers RLIMIT_STACK to 8 MiB, so the kernel does it"
	}
	return ""
}

// stkLim is _STK_LIM, the stack limit a secure exec leaves at most.
const stkLim = 8 << 20

// kernelExecInPlace says why the kernel, not the stub, should do an exec in
// place of this process, whose personality for the exec is persona and
// whose stack limit is rlimit; "" when the stub can do it exactly. A plan
// that is not extended is the kernel's own exec, so the kernel's is then the
// same exec, exact; an extended one (a binfmt rule of uexec's) only the stub
// can do.
func kernelExecInPlace(plan *execsw.Plan, persona uint32, rlimit uint64) string {
	if plan.Extended != "" {
		return ""
	}
	if plan.KernelOnly != "" {
		return plan.KernelOnly
	}
	if note := setIDKernelNote(plan, persona, rlimit); note != "" {
		return note
	}
	switch {
	case plan.Compat:
		return compatNote
	case plan.Cred.Downgraded || plan.Cred.SetID && os.Geteuid() != 0:
		return "set-id and uexec is not root: only the kernel can give the program its ids, so it does the exec"
	case !canSetExeFD():
		return kernelExeNote
	case sys.SeccompFiltered():
		return filteredNote
	}
	return ""
}

// Why the kernel does an exec as requested instead of the stub, for the
// notes: a 32-bit image, or a process that could not make /proc/PID/exe
// the program's.
const (
	compatNote    = "a 32-bit image: uexec has no 32-bit stub, so the kernel does the exec (it is the plan)"
	kernelExeNote = "exact by the kernel: /proc/PID/exe needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE (prctl exe_fd) to be the program's"
	filteredNote  = "exact by the kernel: seccomp filters of the caller's own would judge the stub's system calls, which are not the program's"
)
