//go:build linux && amd64

package linux

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/execsw"
	"github.com/uexec/uexec/internal/stub"
	"github.com/uexec/uexec/internal/sys"
	"github.com/uexec/uexec/internal/tracee"
	"github.com/uexec/uexec/vm"
)

// TreeOptions say how StartTree serves the execs of a process tree.
type TreeOptions struct {
	// Switch plans every exec of the tree; required.
	Switch *execsw.Switch
	// OnExec, when set, is called for every exec of the tree after the
	// first (the caller logs the first itself, or passes it as First), on
	// the tracer's thread: it must not block.
	OnExec func(*ExecEvent)
	// First, when set, is the first program's exec: the untraced tree
	// passes it to OnExec, with Pid set, before any other event, so that
	// a log of OnExec and OnExit is in order.
	First *ExecEvent
	// NoWaitDescendants ends the tracing when the first program exits:
	// descendants still alive continue, and their later execs are the
	// kernel's. Otherwise the tree is served until every tracee is gone.
	NoWaitDescendants bool
	// Logf, when set, receives one line per step of every build.
	Logf func(format string, args ...any)
	// Traced runs the tree under ptrace for good (the older design:
	// every fork, exit and signal goes through the tracer), instead of
	// seccomp user notification.
	Traced bool
	// EmulRoot is the emulation root of every exec of the tree
	// (execsw.Request.EmulRoot); "" for none. An exec that the kernel
	// would do where the plan finds a file under it is refused instead
	// (the kernel would not see the root).
	EmulRoot string
	// Helper is the argv of a program that runs ServeKernelExecs on its
	// standard input; with NoWaitDescendants it becomes the tracer of the
	// released processes. Without it they are detached only, and an exec
	// they make fails with ENOSYS (the seccomp filter stays).
	Helper []string
	// StopAtExec, when set, says which execs of the tree stop at their
	// entry (PS_STOPEXEC, tree_stopexec.go): it gets the path as passed
	// and the program file it names (absolute, symlinks resolved; "" when
	// unknown). Stopped execs have ExecEvent.Stopped.
	StopAtExec func(path, resolved string) bool
	// OnExit, when set, is called for each process of the tree that ends
	// (once reaped by its parent) after an exec uexec saw (or refused),
	// with the image of its last exec (ExitEvent.Planned), on the serving
	// thread, after every OnExec of the process: it must not block. Only the
	// untraced tree (not Traced) reports, and only while uexec serves it
	// (not for processes released by NoWaitDescendants). See exitwatch.go.
	OnExit func(*ExitEvent)
}

// ExecEvent is one exec of the tree, as --log-execs reports it.
type ExecEvent struct {
	Time time.Time
	Pid  int // the caller's thread id (its pid unless a thread exec'd)
	Ppid int
	Cwd  string   // the caller's working directory at the exec
	Path string   // as the caller passed it ("/dev/fd/N[/name]" for execveat by descriptor)
	Argv []string // as the caller passed it
	// Chain is the handler chain of the plan: which format matched which
	// file; empty when the exec failed before a handler took it.
	Chain []execsw.Link
	// Err is nil for an exec that succeeded; otherwise it wraps the errno
	// the caller got back, or, past the point of no return, why the
	// process was killed with SIGSEGV.
	Err error
	// By is "uexec" when uexec's engine did the exec, "kernel" when the
	// kernel did (Note says why).
	By   string
	Note string
	// Stopped: the new image waits at its first instruction in a group
	// stop (TreeOptions.StopAtExec).
	Stopped bool
}

// Tree is a process tree whose execs are done by uexec's engine: the first
// program, started by StartTree, and every descendant it starts.
//
// One locked OS thread traces every process of the tree. A seccomp filter,
// installed in the first stub before its image is built and inherited by
// every descendant, stops execve and execveat (in every system call ABI)
// in that thread, which plans the exec with the caller's own state; all
// other system calls run untraced. See the package documentation, "Process
// trees".
type Tree struct {
	// Pid is the first program's.
	Pid int
	// Notes are the first program's (see Process.Notes).
	Notes []string

	opts      TreeOptions
	first     *tracee.Tracee // the first stub, until the loop starts
	self      int
	stubPath  string
	tasks     map[int]*task
	firstDone chan struct{}
	firstWS   unix.WaitStatus
	firstGone bool
	done      chan struct{}
	err       error
	exits     *exitWatch // with OnExit
}

// task is one traced thread.
type task struct {
	tid        int
	started    bool // its first stop (the attach SIGSTOP) has been seen
	kernelNext bool // its next exec stop goes to the kernel untouched
	exec       *pendingExec
	stopping   bool // release: a SIGSTOP of ours is on its way
	listening  bool // kept in a group-stop with PTRACE_LISTEN
	jobStopped bool // release: interrupted in the program's own group-stop
	// hold are the files of the plan stub this task last exec'd: closed at
	// its next event, when the stub has opened them.
	hold []*os.File
}

// release closes what tk held for its stub.
func (tk *task) release() {
	for _, f := range tk.hold {
		f.Close()
	}
	tk.hold = nil
}

// pendingExec is an exec between the seccomp stop and the built image.
type pendingExec struct {
	plan   *execsw.Plan
	req    *execsw.Request
	regs   unix.PtraceRegs // at the seccomp stop: to let the kernel retry
	ev     *ExecEvent
	execed bool // the kernel's exec of the stub is done
	// byName: the plan's files are opened by their names with the
	// caller's credentials (a caller that cannot reach uexec's /proc).
	byName bool
	// planStub: the stub runs the plan itself; hold keeps the plan and
	// its files open until it has opened them through /proc/<uexec>/fd.
	planStub bool
	hold     []*os.File
}

// treeOptions are the ptrace options of every tracee.
const treeOptions = unix.PTRACE_O_EXITKILL | unix.PTRACE_O_TRACESECCOMP | unix.PTRACE_O_TRACEFORK |
	unix.PTRACE_O_TRACEVFORK | unix.PTRACE_O_TRACECLONE | unix.PTRACE_O_TRACEEXEC | unix.PTRACE_O_TRACESYSGOOD

// StartTree runs plan as Start does, and keeps tracing the program and
// every process it starts: each of their execs is planned with topts.Switch
// from the caller's state and built by this backend. The first program is a
// child of this process; Wait returns its status.
func StartTree(plan *execsw.Plan, opts *Options, topts *TreeOptions) (*Tree, error) {
	if topts == nil || topts.Switch == nil {
		return nil, errors.New("uexec backend: StartTree needs a switch")
	}
	if opts == nil {
		opts = &Options{}
	}
	// The traced tree's first program is built by the ptrace builder,
	// which has no kernel exec.
	if err := runnable(plan, !topts.Traced && opts.Path != "" && plan.Extended == ""); err != nil {
		return nil, err
	}
	if !topts.Traced {
		return startNotifyTree(plan, opts, topts)
	}
	stubPath, err := StubPath()
	if err != nil {
		return nil, err
	}
	tr := &Tree{opts: *topts, self: os.Getpid(), stubPath: stubPath, tasks: map[int]*task{},
		firstDone: make(chan struct{}), done: make(chan struct{})}
	o := *opts
	o.tree = tr
	ch := make(chan error, 1)
	go func() {
		// This thread traces the whole tree; it never unlocks, so that
		// PTRACE_O_EXITKILL ends the tree should it die.
		runtime.LockOSThread()
		p, err, traced := start(plan, &o)
		if err != nil {
			if !traced {
				runtime.UnlockOSThread()
			}
			ch <- err
			return
		}
		tr.Pid, tr.Notes = p.Pid, p.Notes
		tr.tasks[p.Pid] = &task{tid: p.Pid, started: true}
		first := tr.first
		tr.first = nil
		if err := first.Cont(); err != nil {
			first.Kill()
			ch <- err
			return
		}
		ch <- nil
		tr.loop()
		close(tr.done)
	}()
	if err := <-ch; err != nil {
		return nil, err
	}
	return tr, nil
}

// FirstExited is closed when the first program has exited.
func (tr *Tree) FirstExited() <-chan struct{} { return tr.firstDone }

// Wait waits for the first program to exit and returns its status.
func (tr *Tree) Wait() syscall.WaitStatus {
	<-tr.firstDone
	return syscall.WaitStatus(tr.firstWS)
}

// Done is closed when the tracer is finished: every tracee is gone, or,
// with NoWaitDescendants, the first program is and the others are
// released.
func (tr *Tree) Done() <-chan struct{} { return tr.done }

// Err returns what ended the tracer abnormally, once Done is closed.
func (tr *Tree) Err() error { return tr.err }

// Signal sends sig to the first program while it runs.
func (tr *Tree) Signal(sig syscall.Signal) error {
	select {
	case <-tr.firstDone:
		return os.ErrProcessDone
	default:
	}
	return unix.Kill(tr.Pid, sig)
}

// prepare runs in the first stub before its image is built: the ptrace
// options of the tree and the seccomp filter. A root tracer needs no
// no_new_privs (which would change set-id semantics for the whole tree);
// without CAP_SYS_ADMIN the kernel requires it.
func (tr *Tree) prepare(t *tracee.Tracee) error {
	if err := unix.PtraceSetOptions(t.Pid, treeOptions); err != nil {
		return os.NewSyscallError("ptrace(PTRACE_SETOPTIONS)", err)
	}
	if !selfHasCap(unix.CAP_SYS_ADMIN) {
		if _, err := t.Syscall("prctl(PR_SET_NO_NEW_PRIVS)", unix.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return err
		}
	}
	prog := execFilter()
	code := filterBytes(prog)
	addr := (t.Regs.Rsp - 4096) &^ 15
	var fprog [16]byte // struct sock_fprog: u16 len, pad, pointer
	binary.LittleEndian.PutUint16(fprog[0:], uint16(len(prog)))
	binary.LittleEndian.PutUint64(fprog[8:], addr+16)
	blob := append(fprog[:], code...)
	if err := t.WriteMem(addr, blob); err != nil {
		return err
	}
	if _, err := t.Syscall("seccomp(SECCOMP_SET_MODE_FILTER)", unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, addr); err != nil {
		return err
	}
	return t.WriteMem(addr, make([]byte, len(blob)))
}

func selfHasCap(c uint) bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			m, _ := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return m&(1<<c) != 0
		}
	}
	return false
}

func (tr *Tree) logf(format string, args ...any) {
	if tr.opts.Logf != nil {
		tr.opts.Logf(format, args...)
	}
}

func (tr *Tree) emit(ev *ExecEvent) {
	if tr.opts.OnExec != nil {
		if ev.Cwd == "" {
			// The caller still waits in its exec (or runs its new
			// image, which has the same cwd).
			ev.Cwd, _ = os.Readlink("/proc/" + strconv.Itoa(ev.Pid) + "/cwd")
		}
		tr.opts.OnExec(ev)
	}
}

func (tr *Tree) cont(pid, sig int) {
	if err := unix.PtraceCont(pid, sig); err != nil && err != unix.ESRCH {
		tr.logf("pid %d: ptrace(PTRACE_CONT): %v", pid, err)
	}
}

// loop is the tracer: it serves the stops of every tracee until all are
// gone (or, with NoWaitDescendants, the first program is).
func (tr *Tree) loop() {
	for len(tr.tasks) > 0 || !tr.firstGone {
		if tr.firstGone && tr.opts.NoWaitDescendants {
			tr.release()
			return
		}
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WALL, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			if err != unix.ECHILD {
				tr.err = os.NewSyscallError("wait4", err)
			}
			if !tr.firstGone {
				tr.firstGone = true
				close(tr.firstDone)
			}
			return
		}
		tr.event(pid, ws)
	}
}

// event handles one wait status of tracee pid.
func (tr *Tree) event(pid int, ws unix.WaitStatus) {
	if ws.Exited() || ws.Signaled() {
		tr.exited(pid, ws)
		return
	}
	if !ws.Stopped() {
		return
	}
	tk := tr.tasks[pid]
	if tk == nil {
		// A new child can report its first stop before its parent's
		// fork event.
		tk = &task{tid: pid}
		tr.tasks[pid] = tk
	}
	tk.listening = false
	sig := ws.StopSignal()
	switch {
	case isEventStop(ws):
		if isStopSignal(sig) {
			// A group-stop: kept, as without a tracer. The process stays
			// stopped (its parent has been told) until a SIGCONT, which
			// brings it back here with SIGTRAP.
			tk.started = true
			tk.listening = true
			if _, _, e := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_LISTEN, uintptr(pid), 0, 0, 0, 0); e != 0 && e != unix.ESRCH {
				tr.logf("pid %d: ptrace(PTRACE_LISTEN): %v", pid, e)
			}
			return
		}
		// The first stop of an auto-attached child, a PTRACE_INTERRUPT,
		// or the end of a group-stop (SIGCONT).
		tk.started = true
		tr.cont(pid, 0)
	case sig == syscall.SIGTRAP|0x80:
		tr.syscallStop(tk)
	case sig == syscall.SIGTRAP && ws.TrapCause() > 0:
		switch ws.TrapCause() {
		case unix.PTRACE_EVENT_FORK, unix.PTRACE_EVENT_VFORK, unix.PTRACE_EVENT_CLONE:
			// The program runs: its stub has opened what it needed.
			tk.release()
			if child, err := unix.PtraceGetEventMsg(pid); err == nil && tr.tasks[int(child)] == nil {
				tr.tasks[int(child)] = &task{tid: int(child)}
			}
			tr.cont(pid, 0)
		case unix.PTRACE_EVENT_SECCOMP:
			tk.release()
			tr.seccompStop(tk)
		case unix.PTRACE_EVENT_EXEC:
			tr.execStop(tk)
		default:
			tr.cont(pid, 0)
		}
	default:
		// A signal-delivery-stop: the signal goes on to the tracee (a
		// stop signal then starts a group-stop, reported as above).
		tr.cont(pid, int(sig))
	}
}

// isEventStop reports whether ws is a PTRACE_EVENT_STOP of a seized
// tracee: a group-stop (with the stop signal) or another trap (SIGTRAP).
func isEventStop(ws unix.WaitStatus) bool {
	return ws.Stopped() && uint32(ws)>>16 == unix.PTRACE_EVENT_STOP
}

func isStopSignal(sig syscall.Signal) bool {
	return sig == syscall.SIGSTOP || sig == syscall.SIGTSTP || sig == syscall.SIGTTIN || sig == syscall.SIGTTOU
}

func (tr *Tree) exited(pid int, ws unix.WaitStatus) {
	if tk := tr.tasks[pid]; tk != nil {
		tk.release()
		if tk.exec != nil {
			tk.exec.plan.Close()
			tk.hold = tk.exec.hold
			tk.release()
		}
	}
	delete(tr.tasks, pid)
	if pid == tr.Pid && !tr.firstGone {
		tr.firstWS = ws
		tr.firstGone = true
		close(tr.firstDone)
	}
}

// errnoOf returns the errno err wraps, or 0.
func errnoOf(err error) unix.Errno {
	var e unix.Errno
	if errors.As(err, &e) {
		return e
	}
	return 0
}

// seccompStop is an execve or execveat of tk, stopped before the kernel
// looked at it. The exec is planned with the caller's state; a failure is
// returned to the caller with the call skipped, a success has the kernel
// exec the stub in the caller's place (see writeStubCall).
func (tr *Tree) seccompStop(tk *task) {
	pid := tk.tid
	if tk.kernelNext {
		tk.kernelNext = false
		tr.cont(pid, 0)
		return
	}
	kind, _ := unix.PtraceGetEventMsg(pid)
	var regs unix.PtraceRegs
	if err := unix.PtraceGetRegs(pid, &regs); err != nil {
		tr.cont(pid, 0)
		return
	}
	ev := &ExecEvent{Time: time.Now(), Pid: pid, By: "uexec"}
	kernel := func(note string) {
		ev.By, ev.Note = "kernel", note
		tr.emit(ev)
		tr.cont(pid, 0)
	}
	refuse := func(err error) {
		errno := errnoOf(err)
		if errno == 0 {
			kernel(fmt.Sprintf("uexec could not plan the exec: %v", err))
			return
		}
		regs.Orig_rax = ^uint64(0) // skip the call
		regs.Rax = uint64(-int64(errno))
		if err := unix.PtraceSetRegs(pid, &regs); err != nil {
			tr.logf("pid %d: ptrace(PTRACE_SETREGS): %v", pid, err)
		}
		ev.Err = err
		tr.emit(ev)
		tr.cont(pid, 0)
	}
	c, err := readCaller(pid)
	if err != nil {
		kernel(fmt.Sprintf("reading the caller's state: %v", err))
		return
	}
	ev.Ppid = c.ppid
	if kind == traceCompat {
		kernel("32-bit system call ABI (ia32 or x32): uexec has no 32-bit stub")
		return
	}
	dirfd, pathPtr, argvPtr, envpPtr, flags := unix.AT_FDCWD, regs.Rdi, regs.Rsi, regs.Rdx, uint64(0)
	if kind == traceExecveat {
		dirfd, pathPtr, argvPtr, envpPtr, flags = int(int32(regs.Rdi)), regs.Rsi, regs.Rdx, regs.R10, regs.R8
	}
	path, argv, envp, argErr, err := readCall(pid, pathPtr, argvPtr, envpPtr)
	if err != nil {
		refuse(err)
		return
	}
	ev.Path, ev.Argv = path, argv
	req, self, err := execRequest(c, dirfd, path, flags, argv, envp)
	if err != nil {
		refuse(err)
		return
	}
	req.EmulRoot = tr.opts.EmulRoot
	if req.File != nil {
		// The plan holds a descriptor of its own.
		defer req.File.Close()
	}
	plan, err := planCall(tr.opts.Switch, req, argErr)
	if err != nil {
		refuse(err)
		return
	}
	ev.Chain = plan.Chain
	// Past here the kernel gets the exec only where its exec is the plan.
	planKernel := func(note string) {
		if plan.Extended == "" {
			kernel(note)
			return
		}
		// writeStubCall may have changed regs; the caller's own are
		// still the kernel's copy.
		if err := unix.PtraceGetRegs(pid, &regs); err != nil {
			tr.logf("pid %d: ptrace(PTRACE_GETREGS): %v", pid, err)
		}
		refuse(noKernelExec(req, plan, note, unix.EPERM))
	}
	if self != "" {
		unSelf(plan, self, path)
	}
	switch {
	case plan.Compat:
		plan.Close()
		planKernel("a 32-bit image: uexec has no 32-bit stub")
		return
	case plan.Cred.SetID && !c.maySetID():
		plan.Close()
		planKernel("a set-id exec by a caller without CAP_SETUID and CAP_SETGID")
		return
	}
	stubPath, byName := tr.stubPath, false
	if !c.mayReachUs() {
		// The caller cannot follow /proc/<uexec>/fd: the stub is exec'd
		// from a file any user may execute and the plan's files are
		// opened by name with the caller's own credentials, which must
		// allow it now, before the point of no return.
		p, err := tr.byNameCheck(c, req, plan)
		if err != nil {
			plan.Close()
			planKernel(err.Error())
			return
		}
		stubPath, byName = p, true
	}
	stubArgv := []string{stubArgv0}
	var hold []*os.File
	if !byName {
		// The plan stub runs the plan itself: the supervisor only
		// intercepts and plans.
		var err error
		if stubPath, stubArgv, hold, err = tr.planStubCall(c, req, plan); err != nil {
			plan.Close()
			planKernel(fmt.Sprintf("preparing the stub: %v", err))
			return
		}
	}
	if err := tr.writeStubCall(pid, kind, &regs, stubPath, stubArgv); err != nil {
		plan.Close()
		for _, f := range hold {
			f.Close()
		}
		planKernel(fmt.Sprintf("no room below the caller's stack for the stub's name: %v", err))
		return
	}
	tk.exec = &pendingExec{plan: plan, req: req, ev: ev, regs: regs, byName: byName, planStub: !byName, hold: hold}
	tk.exec.savedArgs(kind, dirfd, pathPtr, argvPtr, envpPtr, flags)
	if err := unix.PtraceSetRegs(pid, &regs); err != nil {
		tk.exec = nil
		plan.Close()
		planKernel(fmt.Sprintf("ptrace(PTRACE_SETREGS): %v", err))
		return
	}
	// PTRACE_SYSCALL: a failed exec of the stub comes back at the
	// system call's exit; a successful one stops at PTRACE_EVENT_EXEC.
	if err := unix.PtraceSyscall(pid, 0); err != nil {
		tr.logf("pid %d: ptrace(PTRACE_SYSCALL): %v", pid, err)
	}
}

// savedArgs puts the caller's own arguments back into the registers saved
// at the seccomp stop (writeStubCall changed them in regs).
func (ex *pendingExec) savedArgs(kind uint, dirfd int, path, argv, envp, flags uint64) {
	r := &ex.regs
	if kind == traceExecveat {
		r.Rdi, r.Rsi, r.Rdx, r.R10, r.R8 = uint64(int64(dirfd)), path, argv, envp, flags
		return
	}
	r.Rdi, r.Rsi, r.Rdx = path, argv, envp
}

// Limits of execve's path (include/uapi/linux/limits.h).
const pathMax = 4096

func isOpenErrno(e unix.Errno) bool {
	switch e {
	case unix.ENOENT, unix.ENOTDIR, unix.ELOOP, unix.EACCES, unix.ENAMETOOLONG, unix.EBADF, unix.ETXTBSY, unix.EINVAL, unix.ENXIO, unix.EPERM:
		return true
	}
	return false
}

// request builds the Request of an exec by c: execve, or execveat with
// dirfd and flags. self, when not "", is the path with the caller's
// /proc/self replaced by its pid.
func execRequest(c *caller, dirfd int, path string, flags uint64, argv, envp []string) (req *execsw.Request, self string, err error) {
	if flags&^uint64(unix.AT_SYMLINK_NOFOLLOW|unix.AT_EMPTY_PATH) != 0 {
		return nil, "", fmt.Errorf("execveat flags %#x: %w", flags, unix.EINVAL)
	}
	if path == "" && flags&unix.AT_EMPTY_PATH == 0 {
		return nil, "", fmt.Errorf("empty path: %w", unix.ENOENT)
	}
	nofollow := flags&unix.AT_SYMLINK_NOFOLLOW != 0
	var file *os.File
	var cloexec bool
	name := path
	switch {
	case path == "" && dirfd == unix.AT_FDCWD:
		return nil, "", fmt.Errorf("AT_EMPTY_PATH on the working directory: %w", unix.EACCES)
	case path == "":
		file, cloexec, err = c.openFD(dirfd)
		if err != nil {
			return nil, "", fmt.Errorf("descriptor %d: %w", dirfd, err)
		}
		name = "/dev/fd/" + strconv.Itoa(dirfd)
	case path[0] != '/' && dirfd != unix.AT_FDCWD:
		file, err = c.openAt(dirfd, path, nofollow)
		if err != nil {
			return nil, "", fmt.Errorf("%s relative to descriptor %d: %w", path, dirfd, err)
		}
		if _, cloexec, err = c.openFD(dirfd); err != nil {
			file.Close()
			return nil, "", err
		}
		name = "/dev/fd/" + strconv.Itoa(dirfd) + "/" + path
	default:
		if s := c.selfPath(path); s != path {
			self, name = s, s
		}
	}
	req, err = c.request(name, argv, envp)
	if err != nil {
		if file != nil {
			file.Close()
		}
		return nil, "", err
	}
	req.File, req.CloseOnExec, req.NoFollow = file, cloexec, nofollow
	return req, self, nil
}

// unSelf gives back the caller's own spelling of a /proc/self path where
// the program sees it: AT_EXECFN and a script's name in argv.
func unSelf(plan *execsw.Plan, self, path string) {
	a := plan.Image.Args
	if a == nil {
		return
	}
	if a.ExecFn == self {
		a.ExecFn = path
	}
	if len(plan.Chain) > 1 {
		for i, s := range a.Argv {
			if s == self {
				a.Argv[i] = path
			}
		}
	}
}

// stubArgv0 is the stub's argv[0] while it runs.
const stubArgv0 = "uexec-stub"

// writeStubCall makes the stopped execve or execveat of pid exec the stub
// at stubPath: its path, argv and an empty envp are written
// below the caller's stack pointer, and the call's arguments point at
// them.
//
// The x86-64 ABI leaves everything below rsp-128 (the red zone) free for
// the kernel's signal frames, and the exec either replaces this memory or
// fails; process_vm_writev never grows a mapping. But a vfork child shares
// its parent's memory, and a Go program's child runs on the stack of the
// goroutine that forked it, where the pages below may be another
// goroutine's stack: this traced tree of the earlier design can corrupt
// such a parent (the untraced tree writes nothing into the caller's
// memory; see stubCall).
func (tr *Tree) writeStubCall(pid int, kind uint, regs *unix.PtraceRegs, stubPath string, argv []string) error {
	// The stopped call becomes an execve of the stub, whichever it was.
	return writeStubExec(pid, regs, -1, stubPath, argv)
}

// execStop is PTRACE_EVENT_EXEC: an exec (the stub's, or one left to the
// kernel) has replaced the image. A thread other than the leader that
// exec'd has taken the leader's pid.
func (tr *Tree) execStop(tk *task) {
	pid := tk.tid
	if former, err := unix.PtraceGetEventMsg(pid); err == nil && int(former) != pid {
		if ftk := tr.tasks[int(former)]; ftk != nil {
			delete(tr.tasks, int(former))
			ftk.tid = pid
			ftk.started = true
			tr.tasks[pid] = ftk
			tk = ftk
		}
	}
	if tk.exec == nil {
		tr.cont(pid, 0)
		return
	}
	if ex := tk.exec; ex.planStub {
		// The stub builds the image itself; it opens what uexec holds
		// for it before any later event of this task.
		tk.exec = nil
		tk.hold = ex.hold
		ex.plan.Close()
		tr.emit(ex.ev)
		tr.cont(pid, 0)
		return
	}
	tk.exec.execed = true
	// On to the system call's exit, where the registers are the user's.
	if err := unix.PtraceSyscall(pid, 0); err != nil {
		tr.logf("pid %d: ptrace(PTRACE_SYSCALL): %v", pid, err)
	}
}

// syscallStop is the exit of an execve whose stub we asked for.
func (tr *Tree) syscallStop(tk *task) {
	pid := tk.tid
	ex := tk.exec
	if ex == nil {
		tr.cont(pid, 0)
		return
	}
	tk.exec = nil
	if !ex.execed {
		// The kernel could not exec the stub for this caller (a chroot
		// without /proc, a noexec policy): let it run the caller's own
		// exec instead. The call is made again from the start.
		var now unix.PtraceRegs
		unix.PtraceGetRegs(pid, &now)
		r := ex.regs
		r.Rax = r.Orig_rax
		r.Rip -= 2 // the syscall instruction
		ex.plan.Close()
		tk.hold = ex.hold
		tk.release()
		if err := unix.PtraceSetRegs(pid, &r); err != nil {
			tr.logf("pid %d: ptrace(PTRACE_SETREGS): %v", pid, err)
		}
		tk.kernelNext = true
		ex.ev.By = "kernel"
		ex.ev.Note = fmt.Sprintf("the stub could not be executed by this caller: %v", unix.Errno(-int64(now.Rax)))
		tr.emit(ex.ev)
		tr.cont(pid, 0)
		return
	}
	defer ex.plan.Close()
	t, err := tracee.Adopt(pid)
	if err == nil {
		err = tr.build(t, ex)
		if err == nil {
			tr.emit(ex.ev)
			if err = t.Cont(); err == nil {
				return
			}
		}
	}
	// Past the point of no return: Linux kills the process.
	ex.ev.Err = err
	ex.ev.Note = "past the point of no return: the process was killed with SIGSEGV"
	tr.emit(ex.ev)
	var ws unix.WaitStatus
	if t == nil {
		unix.Kill(pid, unix.SIGKILL)
		return // the loop sees it die
	}
	if st, dead := t.Dead(); dead {
		ws = st
	} else {
		ws = t.Crash(syscall.SIGSEGV)
	}
	tr.exited(pid, ws)
}

// build builds the planned image in the stub that replaced the caller:
// the plan's files are opened inside it through /proc/<uexec>/fd (the very
// files that were checked) or, for a caller that cannot reach uexec's
// /proc, by name and checked to be the same files (openByName); then the
// builder runs as for Start.
func (tr *Tree) build(t *tracee.Tracee, ex *pendingExec) error {
	plan := ex.plan
	if plan.Fatal != nil {
		return plan.Fatal
	}
	t.SetSyscallSite(stub.SyscallAddr)
	b := &builder{
		r:        t,
		pid:      t.Pid,
		plan:     plan,
		noRandom: ex.req.NoRandom,
		rand:     sys.Random,
		logf:     tr.opts.Logf,
		fds:      map[*vm.File]int{},
		exe:      programFile(plan),
		stubSP:   t.Regs.Rsp,
		inPlace:  true,
	}
	b.at("opening the plan's files")
	scratch := (t.Regs.Rsp - 4096) &^ 15
	for _, f := range planFileList(plan) {
		if ex.byName {
			fd, err := openByName(t, scratch, f)
			if err != nil {
				return err
			}
			b.fds[f] = fd
			continue
		}
		h, err := hostFD(f)
		if err != nil {
			return err
		}
		name := "/proc/" + strconv.Itoa(tr.self) + "/fd/" + strconv.Itoa(int(h.fd))
		err = t.WriteMem(scratch, append([]byte(name), 0))
		var fd uint64
		if err == nil {
			fd, err = t.Syscall("openat", unix.SYS_OPENAT, atFDCWD, scratch, unix.O_RDONLY|unix.O_CLOEXEC)
		}
		if h.opened != nil {
			h.opened.Close()
		}
		if err != nil {
			return err
		}
		b.fds[f] = int(fd)
	}
	wipe := 64
	if ex.byName {
		wipe = maxByName
	}
	if err := t.WriteMem(scratch, make([]byte, wipe)); err != nil {
		return err
	}
	if err := b.run(); err != nil {
		return err
	}
	b.at("starting the program")
	regs := tracee.EntryRegs(uint64(b.entry), uint64(b.sp))
	return t.SetRegs(&regs)
}

// byNameCheck decides, before the point of no return, whether an exec by
// c, which cannot reach uexec's /proc, can still be uexec's: c sees our
// mounts from the same root, can execute the shared stub file, and can
// read every file of the plan by its resolved name (openByName). It
// returns the stub's path, or why not.
func (tr *Tree) byNameCheck(c *caller, req *execsw.Request, plan *execsw.Plan) (string, error) {
	if !c.sameMounts(req.Root) {
		return "", errors.New("the caller, without CAP_SYS_PTRACE, has another root or mount namespace: it can reach neither uexec's descriptors nor its stub file")
	}
	p, err := SharedStubFile()
	if err != nil {
		return "", fmt.Errorf("the caller lacks CAP_SYS_PTRACE and there is no stub file it could execute: %v", err)
	}
	if err := c.mayOpen(p, mayX, 0, 0); err != nil {
		return "", fmt.Errorf("the caller lacks CAP_SYS_PTRACE and cannot execute the stub file: %v", err)
	}
	for _, f := range planFileList(plan) {
		if f.Ino == 0 {
			return "", fmt.Errorf("the caller lacks CAP_SYS_PTRACE and %s has no inode to check it by", f.Name())
		}
		if len(f.Name()) >= maxByName {
			return "", fmt.Errorf("the caller lacks CAP_SYS_PTRACE and %s has a name of %d bytes or more", f.Name(), maxByName)
		}
		if err := c.mayOpen(f.Name(), mayR, f.Dev, f.Ino); err != nil {
			if !strings.HasPrefix(err.Error(), "the caller") {
				err = fmt.Errorf("the caller lacks CAP_SYS_PTRACE and uexec cannot open %s by name: %v", f.Name(), err)
			}
			return "", err
		}
	}
	return p, nil
}

// statSize is sizeof(struct stat) on x86-64.
const statSize = 144

// maxByName bounds the names that openByName writes below the stub's
// stack pointer.
const maxByName = 2048

// openByName opens f inside the stub by its resolved name with
// openat(O_RDONLY|O_CLOEXEC), with the process's own credentials, and
// checks with fstat that it is the planned file (its dev and inode): a
// file replaced since the exec was planned is an error, which past the
// point of no return kills the process.
func openByName(t *tracee.Tracee, scratch uint64, f *vm.File) (int, error) {
	name := f.Name()
	if err := t.WriteMem(scratch, append([]byte(name), 0)); err != nil {
		return 0, err
	}
	fd, err := t.Syscall("openat", unix.SYS_OPENAT, atFDCWD, scratch, unix.O_RDONLY|unix.O_CLOEXEC)
	if err != nil {
		return 0, fmt.Errorf("opening %s as the caller: %w", name, err)
	}
	if _, err := t.Syscall("fstat", unix.SYS_FSTAT, fd, scratch); err != nil {
		return 0, fmt.Errorf("fstat of %s: %w", name, err)
	}
	buf := make([]byte, statSize)
	if err := t.ReadMem(scratch, buf); err != nil {
		return 0, err
	}
	dev, ino := binary.LittleEndian.Uint64(buf[0:]), binary.LittleEndian.Uint64(buf[8:])
	if dev != f.Dev || ino != f.Ino {
		return 0, fmt.Errorf("%s was replaced since the exec was planned (dev %#x inode %d, planned dev %#x inode %d): %w",
			name, dev, ino, f.Dev, f.Ino, unix.ESTALE)
	}
	return int(fd), nil
}

// planFileList returns the distinct files of plan, in order.
func planFileList(plan *execsw.Plan) []*vm.File {
	var out []*vm.File
	seen := map[*vm.File]bool{}
	for _, f := range plan.Files {
		if f != nil && !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	for _, c := range plan.Cmds {
		if c.File != nil && !seen[c.File] {
			seen[c.File] = true
			out = append(out, c.File)
		}
	}
	return out
}

// release ends the tracing with the first program gone: every remaining
// tracee is stopped with a SIGSTOP of ours (its stops are served
// meanwhile; an exec goes to the kernel) and handed over from that stop at
// once: a vfork parent stops only once its child, handed over first, has
// exec'd or exited.
func (tr *Tree) release() {
	h := tr.startHelper()
	for pid, tk := range tr.tasks {
		switch {
		case tk.listening:
			// Stopped by the program's job control: a SIGSTOP would not
			// wake it; PTRACE_INTERRUPT reports the group-stop again, and
			// the helper keeps it.
			tk.stopping, tk.jobStopped = true, true
			if _, _, e := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_INTERRUPT, uintptr(pid), 0, 0, 0, 0); e != 0 {
				tr.logf("pid %d: ptrace(PTRACE_INTERRUPT): %v", pid, e)
			}
		case tk.started:
			tk.stopping = true
			unix.Tgkill(tr.tgidOf(pid), pid, unix.SIGSTOP)
		}
	}
	handed := map[int]bool{}
	me := unix.Gettid()
	for idle := 0; len(tr.tasks) > 0; {
		var ws unix.WaitStatus
		// The helper is a child too: poll, and forget tasks that are no
		// longer ours (gone, or reported before their hand-over).
		pid, err := unix.Wait4(-1, &ws, unix.WALL|unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			break
		}
		if pid == 0 {
			if idle++; idle%20 == 0 {
				for tid := range tr.tasks {
					if tracerOf(tid) != me {
						delete(tr.tasks, tid)
					}
				}
			}
			time.Sleep(time.Millisecond)
			continue
		}
		idle = 0
		if handed[pid] {
			continue
		}
		tk := tr.tasks[pid]
		if tk == nil {
			if !ws.Stopped() {
				continue
			}
			tk = &task{tid: pid}
			tr.tasks[pid] = tk
		}
		if ws.Stopped() {
			sig := ws.StopSignal()
			switch {
			case ws.TrapCause() == unix.PTRACE_EVENT_SECCOMP:
				tk.kernelNext = true
			case isEventStop(ws) && sig == syscall.SIGTRAP && (!tk.started || tk.jobStopped):
				// A child attached meanwhile (its first stop is a trap, not
				// a signal that a detach could deliver), or a job-stopped
				// task continued meanwhile: stopped with a SIGSTOP of ours.
				tk.started, tk.stopping, tk.jobStopped = true, true, false
				unix.Tgkill(tr.tgidOf(pid), pid, unix.SIGSTOP)
				tr.cont(pid, 0)
				continue
			case tk.stopping && (sig == syscall.SIGSTOP && !isEventStop(ws) || isEventStop(ws) && isStopSignal(sig)):
				// Our stop, or a group-stop (which the detach keeps).
				delete(tr.tasks, pid)
				handed[pid] = true
				h.handOver(pid, tk.jobStopped)
				continue
			}
		}
		tr.event(pid, ws)
	}
	h.close()
}

// tracerOf returns the thread id tracing tid, 0 for none or a task gone.
func tracerOf(tid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(tid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "TracerPid:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

func (tr *Tree) tgidOf(tid int) int {
	if c, err := readCaller(tid); err == nil {
		return c.tgid
	}
	return tid
}

// atFDCWD is AT_FDCWD as a register value.
var atFDCWD = func() uint64 { v := int64(unix.AT_FDCWD); return uint64(v) }()

// planStubCall prepares the plan stub's exec for caller c: the plan,
// compiled for the caller's state, in a sealed memfd, and the plan's files,
// all opened by the stub through /proc/<uexec>/fd. It returns the stub's
// path and argv, and the files to hold open until the stub has opened them.
func (tr *Tree) planStubCall(c *caller, req *execsw.Request, plan *execsw.Plan) (string, []string, []*os.File, error) {
	var hold []*os.File
	fail := func(err error) (string, []string, []*os.File, error) {
		for _, f := range hold {
			f.Close()
		}
		return "", nil, nil, err
	}
	env := &stubEnv{open: map[*vm.File]string{}, statusFD: -1, noRandom: req.NoRandom, rand: sys.Random,
		exe: programFile(plan), setCreds: plan.Cred.SetID, vdso: vdsoOnce(), rlimit: req.RlimitStack,
		persona: uint32(c.personality), logf: tr.opts.Logf}
	self := "/proc/" + strconv.Itoa(tr.self) + "/fd/"
	for _, f := range planFileList(plan) {
		h, err := hostFD(f)
		if err != nil {
			return fail(err)
		}
		held := h.opened
		if held == nil {
			// The plan's own descriptor goes with the plan, which is
			// closed before the stub opens it: hold a copy.
			fd, err := unix.FcntlInt(h.fd, unix.F_DUPFD_CLOEXEC, 0)
			if err != nil {
				return fail(os.NewSyscallError("fcntl(F_DUPFD_CLOEXEC)", err))
			}
			held = os.NewFile(uintptr(fd), f.Name())
		}
		hold = append(hold, held)
		env.open[f] = self + strconv.Itoa(int(held.Fd()))
	}
	mfd, err := newMemfd("uexec-plan")
	if err != nil {
		return fail(err)
	}
	hold = append(hold, mfd)
	stubPath, err := planStub.path()
	if err != nil {
		return fail(err)
	}
	argv := []string{stubArgv0, self + strconv.Itoa(int(mfd.Fd()))}
	env.stubArgs = stringsLen(stubPath, argv, nil)
	cp, err := compile(plan, env)
	if err != nil {
		return fail(err)
	}
	if err := fillMemfd(mfd, cp.prog.Encode()); err != nil {
		return fail(err)
	}
	return stubPath, argv, hold, nil
}

// writeStubExec writes the stub's path (or "" for execveat of stubFD), its
// argv and an empty envp below the caller's red zone (see writeStubCall for
// why that is safe) and sets regs for execve(path, argv, envp), or
// execveat(stubFD, "", argv, envp, AT_EMPTY_PATH), with the marker.
func writeStubExec(pid int, regs *unix.PtraceRegs, stubFD int, path string, argv []string) error {
	if stubFD >= 0 {
		path = ""
	}
	base := (regs.Rsp - 128 - 1024) &^ 15
	le := binary.LittleEndian
	vec := uint64(8 * (len(argv) + 2))
	pathAddr := base + vec
	str := pathAddr + uint64(len(path)) + 1
	var buf []byte
	for _, a := range argv {
		buf = le.AppendUint64(buf, str)
		str += uint64(len(a)) + 1
	}
	buf = le.AppendUint64(buf, 0) // argv's NULL
	buf = le.AppendUint64(buf, 0) // envp[0]
	buf = append(append(buf, path...), 0)
	for _, a := range argv {
		buf = append(append(buf, a...), 0)
	}
	local := []unix.Iovec{{Base: &buf[0], Len: uint64(len(buf))}}
	remote := []unix.RemoteIovec{{Base: uintptr(base), Len: len(buf)}}
	n, err := unix.ProcessVMWritev(pid, local, remote, 0)
	if err != nil {
		return os.NewSyscallError("process_vm_writev", err)
	}
	if n != len(buf) {
		return fmt.Errorf("process_vm_writev: %d of %d bytes: %w", n, len(buf), unix.EFAULT)
	}
	envp := base + vec - 8
	if stubFD >= 0 {
		regs.Orig_rax = unix.SYS_EXECVEAT
		regs.Rdi, regs.Rsi, regs.Rdx, regs.R10, regs.R8 = uint64(stubFD), pathAddr, base, envp, unix.AT_EMPTY_PATH
	} else {
		regs.Orig_rax = unix.SYS_EXECVE
		regs.Rdi, regs.Rsi, regs.Rdx = pathAddr, base, envp
	}
	regs.R9 = notifyMarker
	return nil
}
