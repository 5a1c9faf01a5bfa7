//go:build linux && amd64

package linux

import (
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/execsw"
	"github.com/uexec/uexec/internal/sys"
	"github.com/uexec/uexec/vm"
)

// redirect turns the caller's pending exec into an exec of the plan stub
// (see the comment at the top of this file). Before *answered is set the
// caller is untouched, and a failure leaves the exec to the kernel.
func (tr *Tree) redirect(listener int, n *seccompNotif, call *stubCall, c *caller, req *execsw.Request, plan *execsw.Plan, answered *bool, stop bool) (_ string, err error) {
	tid := int(n.pid)
	const opts = unix.PTRACE_O_TRACEEXEC | unix.PTRACE_O_TRACESYSGOOD
	if _, _, e := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_SEIZE, uintptr(tid), 0, opts, 0, 0); e != 0 {
		// Traced by someone else (gdb or strace in the tree), or not
		// ours to trace.
		return "the caller cannot be seized", os.NewSyscallError("ptrace(PTRACE_SEIZE)", e)
	}
	step("tree:seized")
	stopped := false
	defer func() {
		if !stopped {
			// Seized but still waiting for the answer: let the kernel
			// run its call, and detach at the first stop that brings.
			unix.PtraceInterrupt(tid)
			if !*answered {
				notifSend(listener, n.id, true, 0, 0)
				*answered = true
				if err != nil {
					err = &callGivenBack{err}
				}
			}
			var ws unix.WaitStatus
			if _, err := tr.wait4(tid, &ws, unix.WALL); err == nil && ws.Stopped() {
				unix.PtraceDetach(tid)
			}
		}
	}()
	if !notifValid(listener, n.id) {
		*answered = true // nothing to answer: the caller is gone
		return "the caller went away", unix.ESRCH
	}

	// The stub with its plan, and the plan's files, go into the caller.
	env := &stubEnv{fds: map[*vm.File]int{}, statusFD: -1, noRandom: req.NoRandom, rand: sys.Random,
		exe: programFile(plan), setCreds: plan.Cred.SetID, vdso: vdsoOnce(), rlimit: req.RlimitStack,
		persona: uint32(c.personality), logf: tr.opts.Logf, nonDumpable: unreadableBy(c, plan),
		// The stub restores the caller's mask itself (uexec does too, at
		// the exec event): an image whose uexec died after it blocked
		// every signal (below) must not keep them blocked.
		sigMask: &c.sigBlk}
	add := func(fd uintptr, cloexec bool) (int, error) {
		return notifAddfd(listener, n.id, int(fd), cloexec)
	}
	// Each descriptor handed over is a round trip to the waiting caller
	// (30-90 µs here): a caller that may open the plan's files by their
	// names does so itself, and only the stub with its plan is handed.
	byName := tr.byNameFiles(c, plan)
	if byName {
		env.byName = map[*vm.File]string{}
		for _, f := range planFileList(plan) {
			env.byName[f] = f.Name()
		}
	}
	for _, f := range planFileList(plan) {
		if byName {
			break
		}
		h, err := hostFD(f)
		if err != nil {
			return "opening the plan's files", err
		}
		num, err := add(h.fd, false)
		if h.opened != nil {
			h.opened.Close()
		}
		if err != nil {
			return "installing the plan's files", err
		}
		env.fds[f] = num
		env.closeFDs = append(env.closeFDs, num)
	}
	// A copy of the stub with the plan appended, exec'd by its descriptor
	// (close-on-exec: the stub reads the plan through /proc/self/exe, and
	// a caller whose exec of the stub fails keeps nothing) with the
	// caller's own argv and envp, so that nothing is written into the
	// caller's memory: a vfork child's is its parent's, and below its
	// stack pointer may lie another thread's stack (a Go program's
	// goroutines). The copy is an unnamed file beside the cached stub, so
	// that the caller's sandbox (Landlock) judges its exec as it judges
	// the stub's; a refused one is the kernel's exec (below).
	pf, err := tr.planFile()
	if err != nil {
		return "writing the plan", err
	}
	defer pf.close()
	stubFD, err := add(pf.r.Fd(), true)
	if err != nil {
		return "installing the stub", err
	}
	env.stubArgs = stringsLen(stubFDPath(stubFD), call.argvs, call.envps)
	if len(call.argvs) == 0 {
		env.stubArgs++ // the kernel gives an empty argv one "" (fs/exec.c)
	}
	cp, err := compile(plan, env)
	if err != nil {
		return "compiling the plan", err
	}
	for _, note := range cp.notes {
		tr.logf("pid %d: note: %s", tid, note)
	}
	err = pf.write(planStub.elf(), cp.encode())
	cp.release() // the file has it
	if err != nil {
		return "writing the plan", err
	}

	step("tree:files-added")
	// Stop the caller as it returns from the call, which restarts.
	if err := unix.PtraceInterrupt(tid); err != nil {
		return "ptrace(PTRACE_INTERRUPT)", err
	}
	step("tree:interrupted")
	*answered = true
	if err := notifSend(listener, n.id, false, -errRestartNoIntr, 0); err != nil {
		return "answering the notification", err
	}
	step("tree:answered")
	var ws unix.WaitStatus
	if _, err := tr.wait4(tid, &ws, unix.WALL); err != nil || !ws.Stopped() {
		stopped = true // dead, or not ours any more
		return "waiting for the caller's stop", fmt.Errorf("status %#x: %v: %w", uint32(ws), err, unix.ECHILD)
	}
	stopped = true
	step("tree:stopped")
	detached := false
	defer func() {
		if !detached {
			unix.PtraceDetach(tid)
		}
	}()
	// Signals that arrive during the redirection are held back and sent
	// again once the stub runs: a handler of the old image must not run
	// between the stop and the exec (the call would be its, its registers
	// ours), and a stop would leave the exec half-way.
	var held []syscall.Signal
	if !isEventStop(ws) {
		held = append(held, ws.StopSignal())
	}
	var mask, all uint64 = 0, ^uint64(0)
	if err := ptraceSigmask(tid, true, &mask); err != nil {
		return "ptrace(PTRACE_GETSIGMASK)", err
	}
	if mask != c.sigBlk {
		// The plan restores c.sigBlk (see env.sigMask above); the
		// caller cannot change its mask while it waits in its call.
		tr.logf("pid %d: signal mask %#x at the stop, %#x when read", tid, mask, c.sigBlk)
	}
	var regs unix.PtraceRegs
	if err := unix.PtraceGetRegs(tid, &regs); err != nil {
		return "ptrace(PTRACE_GETREGS)", err
	}
	saved := regs
	if plan.Extended == "" && callerProc(req) && c.cred.EUID == 0 {
		// Should its exec give root no capabilities (SECBIT_NOROOT,
		// which procfs does not show), its stub could neither set
		// /proc/PID/exe nor make the call again by its name (a path
		// through its own procfs or descriptors): it makes its own.
		if bits, err := tr.inject(tid, saved.Rip-2, saved, unix.SYS_PRCTL, unix.PR_GET_SECUREBITS, &held); err == nil && bits&secbitNoRoot != 0 {
			detached = true
			return tr.ownExec(tid, saved, mask, c, call, append(env.closeFDs, stubFD), held)
		}
	}
	call.set(&regs, stubFD)
	// The trap flag, so that the only stop before the exec's is the
	// failure's: should the kernel refuse to exec the stub, the caller
	// traps one instruction after its call returns (every signal is
	// blocked meanwhile, see below) and is given its own call back; a
	// successful exec clears the flag (start_thread sets rflags to 0x202).
	// (PTRACE_SYSCALL stopped at the restarted call's entry too: a round
	// trip to the caller, ~70 µs here. PTRACE_SINGLESTEP's flag outlives
	// an exec: it would kill the stub with SIGTRAP were uexec to die.)
	regs.Eflags |= eflagsTF
	// The registers first, then the mask: should uexec die in between,
	// the caller execs the stub with its own mask rather than making its
	// own call again (ENOSYS without a listener) with every signal
	// blocked for good.
	if err := unix.PtraceSetRegs(tid, &regs); err != nil {
		return "ptrace(PTRACE_SETREGS)", err
	}
	step("tree:regs-set")
	if err := ptraceSigmask(tid, false, &all); err != nil {
		unix.PtraceSetRegs(tid, &saved)
		return "ptrace(PTRACE_SETSIGMASK)", err
	}
	step("tree:masked")
	deliver := 0 // a fault of the caller's, delivered at once
	for {
		if err := unix.PtraceCont(tid, deliver); err != nil {
			return "ptrace(PTRACE_CONT)", err
		}
		deliver = 0
		if _, err := tr.wait4(tid, &ws, unix.WALL); err != nil {
			if err == unix.ECHILD && c.tgid != tid {
				// A thread that exec'd took the leader's pid.
				tid = c.tgid
				if _, err = tr.wait4(tid, &ws, unix.WALL); err == nil {
					goto got
				}
			}
			detached = true
			return "waiting for the stub's exec", err
		}
	got:
		if ws.Exited() || ws.Signaled() {
			detached = true
			if ws.Signaled() {
				// Its own seccomp filter's SIGSYS for the
				// execveat, say: the log names it.
				return fmt.Sprintf("the caller died of %v during its exec", unix.SignalName(ws.Signal())), unix.ESRCH
			}
			return "the caller died during its exec", unix.ESRCH
		}
		if ws.StopSignal() == syscall.SIGTRAP && ws.TrapCause() == unix.PTRACE_EVENT_EXEC {
			step("tree:exec-event")
			break
		}
		switch {
		case ws.StopSignal() == syscall.SIGTRAP:
			if !singleStepped(tid) {
				held = append(held, ws.StopSignal()) // sent by someone
				continue
			}
			var now unix.PtraceRegs
			unix.PtraceGetRegs(tid, &now)
			// The trap one instruction after the call's return: the
			// kernel could not exec the stub for this caller. What was
			// handed to it goes (the plan's files are not close-on-exec,
			// and the stub's copy would stay were the caller's own exec
			// to fail), and its own call is made again, with its own
			// registers: notified again, it is the kernel's where the
			// plan is the kernel's own exec (tr.stubRefused).
			errno := unix.Errno(-int64(now.Rax))
			if err := tr.closeIn(tid, saved.Rip-2, now, append(env.closeFDs, stubFD), &held); err != nil {
				if err == unix.ESRCH {
					detached = true
					return "the caller died during its exec", err
				}
				tr.logf("pid %d: closing what was handed over: %v", tid, err)
			}
			saved.Rax = saved.Orig_rax
			saved.Rip -= 2
			unix.PtraceSetRegs(tid, &saved)
			ptraceSigmask(tid, false, &mask)
			resend(c.tgid, tid, held)
			tr.stubRefused(n, errno)
			return "the stub could not be executed", &callGivenBack{errno}
		case isEventStop(ws):
			// The interrupt's stop, when a signal came before it.
		case faulted(tid, ws.StopSignal()):
			// The kernel's own signal for a fault (the exec of the
			// stub left it without the stack its limit forbids, say):
			// held, the instruction would fault again forever; it
			// kills the process, as it would natively.
			deliver = int(ws.StopSignal())
		default:
			held = append(held, ws.StopSignal())
		}
	}
	if err := ptraceSigmask(tid, false, &mask); err != nil {
		tr.logf("pid %d: ptrace(PTRACE_SETSIGMASK): %v", tid, err)
	}
	if stop {
		// --stop-at-exec: keep the seize to the entry (tree_stopexec.go).
		detached = true
		err := tr.stopFollow(tid, &ws, cp.entryWords)
		resend(c.tgid, tid, held)
		if err != nil {
			unix.PtraceDetach(tid) // if still ours
			return "stopping at the entry", err
		}
		return "", nil
	}
	if plan.Extended == "" && noExeCaps(tid) {
		// Its exec took the capabilities away (notify_exeless.go).
		var now unix.PtraceRegs
		err := errNotAgain
		if call.byName() && !callerProc(req) && unix.PtraceGetRegs(tid, &now) == nil {
			var ok bool
			if ok, err = tr.execFromStub(tid, now, call, env.closeFDs, &held); ok {
				call.kernel, err = noRootNote, nil
			}
		}
		if err != nil {
			call.note = fmt.Sprintf("/proc/PID/exe names the stub: the caller's exec left it without CAP_SYS_ADMIN and CAP_CHECKPOINT_RESTORE (SECBIT_NOROOT), and the stub could not make its exec again: %v", err)
			tr.logf("pid %d: %s", tid, call.note)
		}
	}
	if call.atExec != nil {
		call.atExec()
	}
	if err := unix.PtraceDetach(tid); err != nil {
		tr.logf("pid %d: ptrace(PTRACE_DETACH): %v", tid, err)
	}
	detached = true
	step("tree:detached")
	resend(c.tgid, tid, held)
	return "", nil
}

// callGivenBack is a redirect that gave the caller its own call back, to
// make again (the kernel could not exec the stub in the caller's place, a
// sandbox's Landlock rules for one): see refusedCall.
type callGivenBack struct{ err error }

func (e *callGivenBack) Error() string {
	return e.err.Error() + ": the caller makes its own call again"
}
func (e *callGivenBack) Unwrap() error { return e.err }

// refusedCall is a call whose stub the kernel refused to exec (errno), given
// back to its caller: when the caller makes it again, the kernel makes it
// where the plan is the kernel's own exec, and errno is the answer where it
// is not (a binfmt rule, an emulation root, veriexec's pinned files: the
// kernel's exec would not follow them).
type refusedCall struct {
	n     seccompNotif // pid, nr, ip and args; id is the first call's
	errno unix.Errno
}

// stubRefused records that the kernel refused the stub to the caller of n.
func (tr *Tree) stubRefused(n *seccompNotif, errno unix.Errno) {
	if tr.refused == nil || len(tr.refused) >= 4096 {
		// Callers that died before making their call again leave
		// entries; forgetting one costs its caller one refusal more.
		tr.refused = map[uint32]refusedCall{}
	}
	tr.refused[n.pid] = refusedCall{n: *n, errno: errno}
}

// planFile returns the copy of the stub for a redirect: the one made
// ready after the last (readyPlanFile), or a new one.
func (tr *Tree) planFile() (*planFile, error) {
	if pf := tr.spare; pf != nil {
		tr.spare = nil
		return pf, nil
	}
	return planStub.planFile()
}

// readyPlanFile makes the next redirect's copy of the stub, with the
// stub's bytes written, while no caller waits for it (creating the file
// and writing the stub were ~60 µs of each redirect's wait).
func (tr *Tree) readyPlanFile() {
	if tr.spare != nil {
		return
	}
	pf, err := planStub.planFile()
	if err != nil {
		return // the next redirect tries and says why
	}
	if err := pf.writeStub(planStub.elf()); err != nil {
		pf.close()
		return
	}
	tr.spare = pf
}

// refusedAgain reports, for notification n, the errno of its stub's refusal
// if n is the caller's refused call made again (the same call from the same
// place); the caller's entry goes either way.
func (tr *Tree) refusedAgain(n *seccompNotif) (unix.Errno, bool) {
	r, ok := tr.refused[n.pid]
	if !ok {
		return 0, false
	}
	delete(tr.refused, n.pid)
	return r.errno, r.n.nr == n.nr && r.n.arch == n.arch && r.n.ip == n.ip && r.n.args == n.args
}

// closeIn closes the descriptors fds of tracee tid, stopped at a signal's stop
// with registers regs, by running close(2) at sysAddr, the syscall
// instruction of its call (inject). Signals that stop it meanwhile are added
// to held. The caller's registers are left for the caller to set.
func (tr *Tree) closeIn(tid int, sysAddr uint64, regs unix.PtraceRegs, fds []int, held *[]syscall.Signal) error {
	for _, fd := range fds {
		if r, err := tr.inject(tid, sysAddr, regs, unix.SYS_CLOSE, uint64(fd), held); err != nil {
			return err
		} else if r != 0 {
			return fmt.Errorf("close(%d): %w", fd, unix.Errno(-int64(r)))
		}
	}
	return nil
}

// inject makes tracee tid, stopped at a signal's stop with registers regs,
// run system call nr with argument a0 at sysAddr, a syscall instruction of
// its own, with one single step (the kernel reports a step over a system
// call at the call's exit), and returns the call's result. Signals that stop
// it meanwhile are added to held. The caller's registers are left for the
// caller to set.
func (tr *Tree) inject(tid int, sysAddr uint64, regs unix.PtraceRegs, nr, a0 uint64, held *[]syscall.Signal) (uint64, error) {
	r := regs
	r.Rip, r.Rax, r.Orig_rax, r.Rdi = sysAddr, nr, ^uint64(0), a0
	r.Eflags &^= eflagsTF
	if err := unix.PtraceSetRegs(tid, &r); err != nil {
		return 0, err
	}
	for tries := 0; ; tries++ {
		if tries == 4 {
			return 0, fmt.Errorf("system call %d did not complete", nr)
		}
		if err := unix.PtraceSingleStep(tid); err != nil {
			return 0, err
		}
		var ws unix.WaitStatus
		if _, err := tr.wait4(tid, &ws, unix.WALL); err != nil {
			return 0, err
		}
		if ws.Exited() || ws.Signaled() {
			return 0, unix.ESRCH
		}
		if !isEventStop(ws) && ws.StopSignal() != syscall.SIGTRAP {
			*held = append(*held, ws.StopSignal())
		}
		if err := unix.PtraceGetRegs(tid, &r); err != nil {
			return 0, err
		}
		if r.Rip == sysAddr+2 {
			return r.Rax, nil
		}
	}
}

// resend sends the held signals again to thread tid of process tgid.
func resend(tgid, tid int, held []syscall.Signal) {
	for _, sig := range held {
		unix.Tgkill(tgid, tid, sig)
	}
}

// stubCall is what a redirected caller's exec of the stub passes: its own
// call's arguments, read from its memory, which the kernel copies again.
type stubCall struct {
	pathEnd    uint64 // the NUL that ends the caller's path: ""
	argv, envp uint64 // the caller's argv and envp arrays
	// The strings behind them, as read: their length sizes the stub's
	// stack.
	argvs, envps []string
	// atExec, when set, is called at the stub's exec event, the caller
	// still stopped there (not when it is to stop at its entry): the
	// exec's log line then comes before anything the program writes.
	atExec func()
	// path, dirfd and flags are the caller's call (execve: AT_FDCWD, 0);
	// kernel, set before atExec, says why the stub made the caller's own
	// exec instead of building the image (execFromStub).
	path   string
	dirfd  int
	flags  uint64
	kernel string
	note   string // the log's, for an image that names the stub
}

// byName reports whether the stub can make the caller's call again by its
// name: from the working directory, or absolute (a descriptor the call
// named may be gone with the stub's exec).
func (s *stubCall) byName() bool {
	return s.dirfd == unix.AT_FDCWD || len(s.path) > 0 && s.path[0] == '/'
}

// set makes regs execveat(stubFD, "", argv, envp, AT_EMPTY_PATH), marked
// for the filter.
func (s *stubCall) set(regs *unix.PtraceRegs, stubFD int) {
	regs.Orig_rax = unix.SYS_EXECVEAT
	regs.Rdi, regs.Rsi, regs.Rdx, regs.R10, regs.R8 = uint64(stubFD), s.pathEnd, s.argv, s.envp, unix.AT_EMPTY_PATH
	regs.R9 = notifyMarker
}

// faulted reports whether tracee tid stopped for sig as the kernel's
// report of a fault (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGSYS raised by an
// instruction), not as a signal someone sent.
func faulted(tid int, sig syscall.Signal) bool {
	switch sig {
	case syscall.SIGSEGV, syscall.SIGBUS, syscall.SIGILL, syscall.SIGFPE, syscall.SIGSYS:
	default:
		return false
	}
	var si [128]byte
	if _, _, e := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_GETSIGINFO, uintptr(tid), 0, uintptr(unsafe.Pointer(&si[0])), 0, 0); e != 0 {
		return false
	}
	// si_code: positive for the kernel's (a fault, SI_KERNEL), 0 or
	// negative for a sender's (SI_USER, SI_TKILL, SI_QUEUE).
	return int32(binary.LittleEndian.Uint32(si[8:])) > 0
}

// stubFDPath is AT_EXECFN of an exec by descriptor fd (fs/exec.c).
func stubFDPath(fd int) string { return "/dev/fd/" + strconv.Itoa(fd) }

// byNameFiles reports whether the caller may open every file of the plan
// by its name (as uexec resolved it: the caller shares uexec's mounts and
// root), so that nothing but the stub need be handed over.
func (tr *Tree) byNameFiles(c *caller, plan *execsw.Plan) bool {
	for _, f := range planFileList(plan) {
		// A name through procfs (a removed cwd's link) may not outlive
		// the exec of the stub (a thread's directory).
		if strings.HasPrefix(f.Name(), "/proc/") || c.mayOpen(f.Name(), mayR, f.Dev, f.Ino) != nil {
			return false
		}
	}
	return true
}

// errRestartNoIntr is ERESTARTNOINTR (include/linux/errno.h): a system call
// returning it is made again, after whatever stop or handler comes first.
const errRestartNoIntr = 513

// eflagsTF is the trap flag of rflags.
const eflagsTF = 0x100

// singleStepped reports whether tracee tid's SIGTRAP stop is a trap flag's
// single step (si_code TRAP_TRACE), not a SIGTRAP someone sent.
func singleStepped(tid int) bool {
	var si [128]byte // siginfo_t
	if _, _, e := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_GETSIGINFO, uintptr(tid), 0, uintptr(unsafe.Pointer(&si)), 0, 0); e != 0 {
		return false
	}
	const trapTrace = 2 // TRAP_TRACE, include/uapi/asm-generic/siginfo.h
	return int32(binary.LittleEndian.Uint32(si[8:])) == trapTrace
}
