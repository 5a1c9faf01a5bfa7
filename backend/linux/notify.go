//go:build linux && amd64

package linux

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/execsw"
	"github.com/uexec/uexec/internal/sys"
)

// The untraced tree. The first program's stub installs a seccomp filter
// that returns SECCOMP_RET_USER_NOTIF for execve and execveat, and sends
// the filter's listener to this process; nothing of the tree is traced.
// Forks, exits, signals, stops and waits are the kernel's. For each exec
// the listener delivers (the caller waits in the kernel meanwhile):
//
//   - a refused exec is answered with its errno, the caller untouched;
//   - an exec uexec leaves to the kernel (32-bit, AT_EXECVE_CHECK, a caller
//     this process may not trace, a set-id exec the caller could not do or
//     whose layout its credentials change, a program with file
//     capabilities) is answered CONTINUE: the kernel runs the caller's own
//     call;
//   - an exec uexec builds is redirected to the plan stub: the caller is
//     seized with PTRACE_SEIZE for that moment only, a copy of the stub
//     with the plan appended (an unnamed file beside the cached stub) and
//     the plan's files it may not open by name are installed in it with
//     SECCOMP_IOCTL_NOTIF_ADDFD, the call is answered -ERESTARTNOINTR after
//     a PTRACE_INTERRUPT, and in the resulting stop its registers are
//     rewritten to execveat(stub, "", argv, envp, AT_EMPTY_PATH) with the
//     caller's own argv and envp (nothing is written into its memory: a
//     vfork child's is its parent's) and notifyMarker in r9 (the filter
//     lets that one through), all signals blocked so that no handler of
//     the old image runs between the stop and the exec, and the trap flag
//     set, so that a refused exec of the stub stops it (the exec clears
//     the flag): the caller then closes what was installed in it, gets its
//     own registers back and makes its call again, which comes back as a
//     notification and is the kernel's, or fails with the stub's errno
//     where only the stub could make it (refusedCall). At the exec's
//     PTRACE_EVENT_EXEC the mask is restored and
//     the process detached; the stub reads its plan from its own
//     descriptor and builds the image untraced. The listener wakes the
//     serving thread and the caller on each other's CPU.
//
// See ../shared/reference/policies.md, sections 7 and 9.

// startNotifyTree runs plan as Start does, with the notifying filter
// installed by the first stub, and serves the tree's execs.
func startNotifyTree(plan *execsw.Plan, opts *Options, topts *TreeOptions) (*Tree, error) {
	if err := ptraceUsable(); err != nil {
		return nil, &Error{Step: "starting the stub", Err: err}
	}
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socketpair", err)
	}
	ours := os.NewFile(uintptr(sp[0]), "uexec-listener")
	theirs := os.NewFile(uintptr(sp[1]), "uexec-listener")
	defer ours.Close()
	o := *opts
	o.notifySock = theirs
	// A stop at the first program's entry is uexec's to make, as a
	// stop at an exec of the tree is (a traced kernel's exec would not
	// raise a set-id program's ids).
	o.KernelExact = topts.KernelExecs && topts.exactByKernel() && !opts.StopAtEntry
	p, err := spawn(plan, &o)
	theirs.Close()
	if err != nil {
		// A program the stub forked and that died in its exec is reaped
		// here, its signal the start's (the stub's own, unforked).
		var e *Error
		if pid := clonedPid(ours); pid > 0 && errors.As(err, &e) {
			var ws unix.WaitStatus
			if _, werr := unix.Wait4(pid, &ws, 0, nil); werr == nil && ws.Signaled() {
				e.Pid, e.Signal = pid, ws.Signal()
			}
		}
		return nil, err
	}
	listener, err := recvFD(int(ours.Fd()))
	if err == nil && p.cloned {
		if err := p.takeClone(ours); err != nil {
			unix.Close(listener)
			return nil, err
		}
	}
	if err != nil {
		// The stub closed its end without sending: it died. Killed past
		// the point of no return (SIGBUS on a file truncated since the
		// plan) or by someone else (SIGKILL) in the middle of the build,
		// its signal is the exec's result, as a caller of the kernel's
		// exec sees it. It is given a second to be gone, then killed.
		e := &Error{Pid: p.Pid, Step: "receiving the tree's listener", Err: err}
		ourKill := time.AfterFunc(time.Second, func() { p.Kill() })
		st, werr := p.Wait()
		if ourKill.Stop() && werr == nil {
			if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				e.Step, e.Signal = "building the image", ws.Signal()
			}
		}
		return nil, e
	}
	// The first program is reaped by the serving thread, through a
	// pidfd in its poll set: a wait from any other thread could take the
	// ptrace stops of the program's own redirected execs.
	pidfd, err := unix.PidfdOpen(p.Pid, 0)
	if err != nil {
		unix.Close(listener)
		p.Kill()
		p.Wait()
		return nil, os.NewSyscallError("pidfd_open", err)
	}
	p.p.Release()
	tr := &Tree{Pid: p.Pid, Notes: p.Notes, Kernel: p.Kernel, opts: *topts, self: os.Getpid(),
		firstDone: make(chan struct{}), done: make(chan struct{}),
		exeless: !selfHasCap(unix.CAP_SYS_ADMIN) && !selfHasCap(unix.CAP_CHECKPOINT_RESTORE)}
	tr.allNote = kernelExactNote
	if tr.exeless {
		tr.allNote = exelessNote
	}
	if self, err := readCaller(tr.self); err == nil {
		tr.selfCred = &self.cred
	}
	if tr.release, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		tr.release = -1 // Release then only takes effect at the next exec
	}
	if err := notifSyncWakeUp(listener); err != nil {
		tr.logf("%v: the serving thread and the callers wake each other on any CPU", err)
	}
	if topts.OnExit != nil {
		if tr.exits, err = newExitWatch(topts.OnExit); err != nil {
			unix.Close(pidfd)
			unix.Close(listener)
			p.Kill()
			p.Wait()
			return nil, err
		}
		tr.exits.child(p.Pid, exitImage(plan, opts.Path))
	}
	go func() {
		// ptrace calls for a caller come from one thread.
		runtime.LockOSThread()
		if topts.First != nil {
			first := *topts.First
			first.Pid, first.Tgid = p.Pid, p.Pid
			if p.Kernel != "" {
				first.By, first.Note = "kernel", execsw.JoinNotes(p.Kernel, first.Note)
			} else if !canSetExeFD() && plan.Extended != "" {
				// As an exec of the tree by such a caller says it.
				first.Note = execsw.JoinNotes(stubExeNote(plan), first.Note)
			}
			tr.emit(&first)
		}
		raiseServingPriority()
		tr.serve(listener, pidfd)
		unix.Close(pidfd)
		if tr.release >= 0 {
			unix.Close(tr.release)
		}
		close(tr.done)
	}()
	return tr, nil
}

// clonedPid reads the pid of the program's process that a stub forked
// (stubEnv.cloneProgram) from the tree's socket, once the stub is done
// with it; 0 when there is none (the clone failed, or the stub died
// before).
func clonedPid(sock *os.File) int {
	fds := []unix.PollFd{{Fd: int32(sock.Fd()), Events: unix.POLLIN}}
	if n, err := unix.Poll(fds, 1000); err != nil || n == 0 {
		return 0
	}
	var b [8]byte
	if n, err := unix.Read(int(sock.Fd()), b[:]); err != nil || n != len(b) {
		return 0
	}
	return int(binary.LittleEndian.Uint64(b[:]))
}

// takeClone makes p the process the stub forked for the program, once the
// stub, which exits at once, is reaped. Without a pid the clone failed and
// the stub became the program itself.
func (p *Process) takeClone(sock *os.File) error {
	pid := clonedPid(sock)
	if pid == 0 {
		return nil
	}
	st, err := p.p.Wait()
	if err != nil || !st.Success() {
		unix.Kill(pid, unix.SIGKILL)
		var ws unix.WaitStatus
		unix.Wait4(pid, &ws, 0, nil)
		return &Error{Pid: p.Pid, Step: "the stub's fork of the program", Err: fmt.Errorf("stub %v: %w", st, unix.ECHILD)}
	}
	proc, err := os.FindProcess(pid)
	if err != nil {
		return &Error{Pid: pid, Step: "opening a pidfd", Err: err}
	}
	p.Pid, p.p = pid, proc
	return nil
}

// reapFirst waits for the first program (flags 0 or WNOHANG) and records
// its status.
func (tr *Tree) reapFirst(flags int) {
	var ws unix.WaitStatus
	pid, err := unix.Wait4(tr.Pid, &ws, flags, nil)
	if flags != 0 && pid == 0 && err == nil {
		return // not yet
	}
	if err == unix.ECHILD && tr.firstGone {
		return // reaped already by a wait of a redirect (tr.wait4)
	}
	tr.firstEnded(ws)
}

// firstEnded records the first program's end, once.
func (tr *Tree) firstEnded(ws unix.WaitStatus) {
	if tr.firstGone {
		return
	}
	tr.firstWS = ws
	tr.firstGone = true
	if tr.exits != nil {
		tr.exits.reaped(tr.Pid, ws)
	}
	close(tr.firstDone)
}

// wait4 is wait4(2) for a caller the serving thread seized. The first
// program is this process's child: a wait for its ptrace stop may reap its
// death instead (killed during its redirected exec), and that status is
// then its end, which reapFirst would otherwise never see (ECHILD).
func (tr *Tree) wait4(tid int, ws *unix.WaitStatus, flags int) (int, error) {
	pid, err := unix.Wait4(tid, ws, flags, nil)
	if err == nil && pid == tr.Pid && (ws.Exited() || ws.Signaled()) {
		tr.firstEnded(*ws)
	}
	return pid, err
}

// ptraceUsable reports why this process could not seize the callers it
// redirects: ptrace refused to it (a sandbox's seccomp filter answers EPERM
// before the kernel looks at the pid, which is 0 here and so ESRCH
// otherwise), or a tracer of its own, which attaches to its children first.
func ptraceUsable() error {
	if _, _, e := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_INTERRUPT, 0, 0, 0, 0, 0); e == unix.EPERM || e == unix.EACCES || e == unix.ENOSYS {
		return os.NewSyscallError("ptrace", e)
	}
	if pid := sys.TracerPid(); pid != 0 {
		return fmt.Errorf("uexec is traced by pid %d: %w", pid, unix.EPERM)
	}
	return nil
}

// recvFD receives the descriptor the stub sent on sock; it is already
// there when the stub has entered the program.
func recvFD(sock int) (int, error) {
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(sock, buf, oob, unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return -1, os.NewSyscallError("recvmsg", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return -1, fmt.Errorf("no descriptor from the stub: %v: %w", err, unix.EBADMSG)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return -1, fmt.Errorf("no descriptor from the stub: %v: %w", err, unix.EBADMSG)
	}
	return fds[0], nil
}

// serve answers the listener's notifications until every process of the
// tree is gone (the listener hangs up), or, with NoWaitDescendants, the
// first program is: the listener then goes to a helper that lets the
// kernel do every later exec.
func (tr *Tree) serve(listener, pidfd int) {
	gone := false // no process uses the filter any more
	defer func() {
		if listener >= 0 {
			unix.Close(listener)
		}
		if tr.spare != nil {
			tr.spare.close()
		}
		if !tr.firstGone {
			tr.reapFirst(0)
		}
		if tr.exits != nil {
			tr.exits.close(gone)
		}
	}()
	fds := []unix.PollFd{{Fd: int32(listener), Events: unix.POLLIN}, {Fd: int32(pidfd), Events: unix.POLLIN}, {Fd: -1},
		{Fd: int32(tr.release), Events: unix.POLLIN}}
	if tr.exits != nil {
		fds[2] = unix.PollFd{Fd: int32(tr.exits.ep), Events: unix.POLLIN}
	}
	var n seccompNotif
	for {
		if tr.firstGone && (tr.opts.NoWaitDescendants || tr.released.Load()) {
			tr.handOff(listener)
			return
		}
		fds[0].Revents, fds[1].Revents, fds[2].Revents, fds[3].Revents = 0, 0, 0, 0
		if tr.firstStopped(); tr.firstGone && fds[1].Fd >= 0 {
			// Reaped by that look: with NoWaitDescendants the tree is
			// handed off now, not at the next exec (the loop's top).
			fds[1].Fd = -1
			continue
		}
		timeout := -1
		if tr.opts.OnFirstStop != nil && !tr.firstGone {
			timeout = firstStopPoll
		}
		if _, err := servePoll(fds, timeout); err != nil {
			if err == unix.EINTR {
				continue
			}
			tr.err = os.NewSyscallError("poll", err)
			return
		}
		if fds[1].Revents != 0 && !tr.firstGone {
			if tr.reapFirst(unix.WNOHANG); tr.firstGone {
				fds[1].Fd = -1 // poll ignores it from now on
			}
		}
		if fds[2].Revents != 0 {
			tr.exits.drain()
		}
		if fds[3].Revents != 0 {
			fds[3].Fd = -1 // Release: handed off at the loop's top
			continue
		}
		if fds[0].Revents&unix.POLLIN == 0 {
			if fds[0].Revents&(unix.POLLHUP|unix.POLLERR) != 0 {
				gone = true
				return
			}
			continue
		}
		if err := notifRecv(listener, &n); err != nil {
			if err == unix.EINTR || err == unix.ENOENT {
				continue // the caller went away meanwhile
			}
			tr.err = fmt.Errorf("seccomp notification: %w", err)
			return
		}
		step("tree:notified")
		tr.notified(listener, &n)
	}
}

// Release lets the tree go once its first program has exited, as
// NoWaitDescendants does: the remaining processes' later execs are the
// helper's (the kernel's), and Done is closed without waiting for them.
// Before the first program's end it takes effect at that end.
func (tr *Tree) Release() {
	tr.released.Store(true)
	if tr.release >= 0 {
		var one = [8]byte{1}
		unix.Write(tr.release, one[:])
	}
}

// handOff gives the listener to the helper process (TreeOptions.Helper
// with ServeNotify), which answers CONTINUE to every later exec: without
// a listener Linux fails them with ENOSYS.
func (tr *Tree) handOff(listener int) {
	if len(tr.opts.Helper) == 0 {
		tr.logf("no helper: the later execs of the remaining processes fail with ENOSYS")
		return
	}
	cmd := exec.Command(tr.opts.Helper[0], append(tr.opts.Helper[1:], serveNotifyArg)...)
	cmd.ExtraFiles = []*os.File{os.NewFile(uintptr(listener), "listener")}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		tr.err = fmt.Errorf("starting the helper: %w", err)
		return
	}
	go cmd.Wait()
}

// serveNotifyArg is the helper's argument after TreeOptions.Helper.
const serveNotifyArg = "notify"

// ServeNotify is the helper of a released untraced tree: it answers
// CONTINUE to every notification of the listener on descriptor 3 until the
// listener hangs up. It returns the helper's exit status.
func ServeNotify() int {
	const listener = 3
	runtime.LockOSThread() // the priority is this thread's
	raiseServingPriority()
	var n seccompNotif
	fds := []unix.PollFd{{Fd: listener, Events: unix.POLLIN}}
	for {
		fds[0].Revents = 0
		if _, err := unix.Poll(fds, -1); err != nil {
			if err == unix.EINTR {
				continue
			}
			return 1
		}
		if fds[0].Revents&unix.POLLIN == 0 {
			return 0
		}
		if err := notifRecv(listener, &n); err != nil {
			if err == unix.EINTR || err == unix.ENOENT {
				continue
			}
			return 1
		}
		notifSend(listener, n.id, true, 0, 0)
	}
}

// notified handles one exec of the tree.
func (tr *Tree) notified(listener int, n *seccompNotif) {
	pid := int(n.pid)
	ev := &ExecEvent{Time: time.Now(), Pid: pid, By: "uexec"}
	answered := false
	stop := false // a planned exec that StopAtExec matched
	refusedErrno, refused := tr.refusedAgain(n)
	if tr.opts.OnExec == nil && tr.opts.OnExit == nil && tr.kernelExecs() {
		// Only the kernel's exec is exact and nobody asks about it:
		// it is let through unplanned (its errors are the kernel's).
		notifSend(listener, n.id, true, 0, 0)
		return
	}
	// For TreeOptions.OnExit: whether the caller may now run another
	// image, and which (nil: unknown).
	tgid, execd, img := pid, false, (*ExitEvent)(nil)
	if tr.exits != nil {
		defer func() {
			if execd {
				tr.exits.execd(tgid, img)
			}
		}()
	}
	// setID, once the exec is planned, says why set-id bits or file
	// capabilities of the program are not applied (no_new_privs, above
	// all, in an ordinary user's tree), for the log.
	// kernelSetID is what the kernel's own exec of the plan ignores (it
	// raises the ids uexec could not: Cred.Downgraded).
	setID, kernelSetID := "", ""
	emit := func() {
		ev.Note = execsw.JoinNotes(ev.Note, setID)
		tr.emit(ev)
	}
	kernel := func(note string) {
		execd = true
		ev.By, ev.Note, setID = "kernel", note, kernelSetID
		if stop && !answered {
			ok, err := tr.continueStopped(listener, n, tgid)
			answered = ok
			if err != nil {
				ev.Note += fmt.Sprintf("; not stopped at its entry: %v", err)
			} else {
				ev.Stopped = ok
				tr.leftStopped(tgid, ok)
			}
		}
		emit()
		if !answered {
			notifSend(listener, n.id, true, 0, 0)
		}
	}
	var refuse func(err error)
	// unplanned: the kernel would do an exec no policy saw; a policy
	// that must see every exec (veriexec) may refuse it.
	unplanned := func(note string) {
		if err := tr.opts.Switch.CheckUnplanned(ev.Path, note); err != nil {
			refuse(err)
			return
		}
		kernel(note)
	}
	refuse = func(err error) {
		errno := errnoOf(err)
		if errno == 0 {
			unplanned(fmt.Sprintf("uexec could not plan the exec: %v", err))
			return
		}
		ev.Err = err
		if tr.kernelExecs() {
			// The kernel's exec answers (the log has the errno
			// uexec found).
			ev.By, ev.Note = "kernel", tr.allNote
			emit()
			notifSend(listener, n.id, true, 0, 0)
			return
		}
		emit()
		notifSend(listener, n.id, false, -int32(errno), 0)
	}
	if n.arch != unix.AUDIT_ARCH_X86_64 || n.nr&x32Bit != 0 {
		unplanned("32-bit system call ABI (ia32 or x32): uexec has no 32-bit stub")
		return
	}
	dirfd, pathPtr, argvPtr, envpPtr, flags := unix.AT_FDCWD, n.args[0], n.args[1], n.args[2], uint64(0)
	if n.nr == unix.SYS_EXECVEAT {
		dirfd, pathPtr, argvPtr, envpPtr, flags = int(int32(n.args[0])), n.args[1], n.args[2], n.args[3], n.args[4]
	}
	// AT_EXECVE_CHECK: every check, no exec. The kernel's own answer,
	// with the caller's securebits, is the native one; the log has the
	// call as far as uexec could read it. With a flag execveat does not
	// know the call is EINVAL, no check (execRequest refuses it).
	isCheck := flags&sys.AT_EXECVE_CHECK != 0 && flags&^uint64(unix.AT_SYMLINK_NOFOLLOW|unix.AT_EMPTY_PATH|sys.AT_EXECVE_CHECK) == 0
	check := func() {
		ev.Check = true
		kernel("AT_EXECVE_CHECK: checked by the kernel")
		execd = false // no exec
	}
	c, err := readCaller(pid)
	if err != nil && isCheck {
		check()
		return
	}
	if err != nil {
		unplanned(fmt.Sprintf("reading the caller's state: %v", err))
		return
	}
	ev.Ppid, ev.Tgid = c.ppid, c.tgid
	tgid = c.tgid // for OnExit, and a stopped exec's event (a thread's)
	if tr.exits != nil {
		tr.exits.track(tgid)
	}
	path, argv, envp, argErr, err := readCall(pid, pathPtr, argvPtr, envpPtr)
	if isCheck {
		if err == nil {
			ev.Path, ev.Argv = path, argv
		}
		check()
		return
	}
	if errors.Is(err, errMayNotRead) || errors.Is(argErr, errMayNotRead) {
		unplanned("this process may not read the caller's memory")
		return
	}
	if err != nil {
		refuse(err)
		return
	}
	ev.Path, ev.Argv = path, argv
	if !notifValid(listener, n.id) {
		return // the caller is gone or interrupted: what was read may not be its
	}
	req, self, err := execRequest(c, dirfd, path, flags, argv, envp)
	if err != nil {
		refuse(err)
		return
	}
	if path == "" || path[0] != '/' && dirfd != unix.AT_FDCWD {
		ev.Path = req.Path // execveat by descriptor: /dev/fd/N[/name]
	}
	req.EmulRoot = tr.opts.EmulRoot
	req.SearchAsSelf = tr.selfCred != nil && req.Cred.SameSearch(tr.selfCred)
	ev.Cwd = execsw.DirName(req.Dir)
	if req.File != nil {
		defer req.File.Close()
	}
	if !c.sameMounts(req.Root) {
		// Its paths name other files than ours (a container, a chroot,
		// a private mount namespace): the kernel resolves them. Its cwd
		// is logged as it sees it (getcwd), under its root.
		ev.Cwd = underRoot(ev.Cwd, req.Root)
		unplanned("the caller has a mount namespace or root of its own")
		return
	}
	if tr.kernelExecs() {
		// The kernel does it whatever the plan, which is for OnExec
		// alone: with LateExecEvents the caller need not wait for it,
		// unless the plan reads the caller's procfs (gone or changed
		// once its exec is done).
		if tr.opts.LateExecEvents && !callerProc(req) {
			notifSend(listener, n.id, true, 0, 0)
			answered = true
		}
		ev.By = "kernel"
		plan, err := planCall(tr.opts.Switch, req, argErr)
		if err != nil {
			if errnoOf(err) == 0 || errors.Is(err, execsw.ErrUnreadable) {
				execd, ev.Note = true, fmt.Sprintf("uexec could not plan the exec: %v", err)
			} else {
				ev.Err, ev.Note = err, tr.allNote // the kernel's errno, as planned
			}
			emit()
		} else {
			ev.Chain, setID, img, execd = plan.Chain, kernelIgnored(plan), exitImage(plan, path), true
			ev.Note = tr.kernelNote(plan, c, req)
			emit()
			plan.Close()
		}
		if !answered {
			notifSend(listener, n.id, true, 0, 0)
		}
		return
	}
	plan, err := planCall(tr.opts.Switch, req, argErr)
	if err != nil {
		refuse(err)
		return
	}
	defer plan.Close()
	step("tree:planned")
	ev.Chain = plan.Chain
	setID, kernelSetID = plan.Cred.IgnoredNote(), kernelIgnored(plan)
	img = exitImage(plan, path)
	stop = tr.stopAt(path, req.Dir, plan)
	if self != "" {
		plan.Renamed(self, path)
	}
	// Past here the kernel gets the exec only where its exec is the plan.
	planKernel := func(note string, errno unix.Errno) {
		if plan.Extended != "" {
			refuse(noKernelExec(req, plan, note, errno))
			return
		}
		kernel(note)
	}
	switch {
	case plan.Compat:
		planKernel(treeCompatNote, unix.ENOEXEC)
		return
	case plan.Extended == "" && setIDKernelNote(plan, uint32(c.personality), req.RlimitStack) != "":
		kernel(setIDKernelNote(plan, uint32(c.personality), req.RlimitStack))
		return
	case plan.Cred.SetID && !c.maySetID():
		planKernel(setIDCapsNote, unix.EPERM)
		return
	case plan.Cred.Downgraded && plan.Extended == "":
		// An extended plan runs with the caller's ids instead, as
		// under an unprivileged tracer.
		kernel(downgradedNote)
		return
	case !c.maySetExe() && plan.Extended == "":
		// The stub could not make /proc/PID/exe the program's; the plan
		// is the kernel's own exec, which gets it right.
		kernel(kernelExeNote)
		return
	case c.filters > 1 && plan.Extended == "":
		// Filters besides the tree's (the caller's, or uexec's own,
		// inherited) would judge the stub's calls: one that refused
		// prctl, munmap or close killed the caller, which the kernel's
		// exec runs.
		kernel(filteredNote)
		return
	case !c.maySetExe():
		ev.Note = stubExeNote(plan)
	}
	if refused {
		planKernel(fmt.Sprintf("the stub could not be executed (%v)", refusedErrno), refusedErrno)
		return
	}
	// The plan, the stub and each file of the plan may take a descriptor
	// in the caller.
	need := len(planFileList(plan)) + 2
	if free, short := c.fewerFDs(need); short {
		planKernel(fmt.Sprintf("the caller has %d free descriptors below RLIMIT_NOFILE, the stub may need %d", free, need), unix.EMFILE)
		return
	}
	call := &stubCall{pathEnd: pathPtr + uint64(len(path)), argv: argvPtr, envp: envpPtr, argvs: argv, envps: envp,
		path: path, dirfd: dirfd, flags: flags}
	logged := false
	call.atExec = func() {
		if call.kernel != "" {
			ev.By, ev.Note = "kernel", execsw.JoinNotes(call.kernel, ev.Note)
		}
		ev.Note = execsw.JoinNotes(ev.Note, call.note)
		execd, logged = true, true
		emit()
	}
	defer tr.readyPlanFile() // for the next, once this caller runs
	if note, err := tr.redirect(listener, n, call, c, req, plan, &answered, stop); err != nil {
		var back *callGivenBack
		if errors.As(err, &back) {
			// The caller makes its call again, and it comes back
			// (refusedAgain): logged then.
			return
		}
		if answered {
			// Past the point of no return, or a caller left half-way.
			// A death past the point of no return is no crash of the
			// program (NetBSD's exec exits without sigexit then).
			execd, img = true, nil
			ev.Err, ev.Note = err, note
			emit()
			return
		}
		planKernel(fmt.Sprintf("%s: %v", note, err), unix.ENOEXEC)
		return
	}
	ev.Stopped = stop
	tr.leftStopped(tgid, stop)
	execd = true
	if !logged {
		emit()
	}
}

// Why the kernel does an exec of the tree (the log's note).
const (
	treeCompatNote  = "a 32-bit image: uexec has no 32-bit stub"
	setIDCapsNote   = "a set-id exec by a caller without CAP_SETUID and CAP_SETGID"
	downgradedNote  = "a set-id exec uexec could not give its ids"
	exelessNote     = "exact by the kernel: uexec, without CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE (prctl exe_fd), lets the kernel do every exec of its tree"
	kernelExactNote = "exact by the kernel: the plan is its own exec, and no binfmt rule, emulation root, policy or stop of uexec's is in the tree (asked to build every exec, uexec run --build or SpawnRequest.Build, uexec builds it)"
	kernelAskedNote = "exact by the kernel: the plan is its own exec, and the kernel was asked to make such an exec (SpawnRequest.ByKernel)"
)

// kernelExecs reports whether the kernel does every exec of the tree as it
// stands: uexec may not make /proc/PID/exe a program's (an ordinary user's
// tree), so that only the kernel's exec is exact for it and its callers,
// or KernelExecs asks for the kernel's exact exec wherever it is the plan;
// and no binfmt rule, emulation root, policy or stop at exec needs an exec
// of uexec's.
func (tr *Tree) kernelExecs() bool {
	return (tr.exeless || tr.opts.KernelExecs) && tr.opts.exactByKernel()
}

// exactByKernel reports whether the plan of every exec of the tree is the
// kernel's own exec: nothing of uexec's (a binfmt rule, an emulation root,
// a policy, a stop at exec) changes or watches what the kernel would do.
func (o *TreeOptions) exactByKernel() bool {
	return o.EmulRoot == "" && o.StopAtExec == nil && o.Switch.Native()
}

// callerProc reports whether planning req may look at the caller's procfs
// directory: a path or cwd through /proc or /dev (/dev/fd/N, /dev/stdin
// lead to the caller's /proc/PID/fd). A path elsewhere with a symlink
// into them is not seen here.
func callerProc(req *execsw.Request) bool {
	under := func(p string) bool { return strings.HasPrefix(p, "/proc/") || strings.HasPrefix(p, "/dev/") }
	return under(req.Path) || !strings.HasPrefix(req.Path, "/") && under(req.Dir+"/")
}

// kernelNote says why the kernel did the exec of plan by c in a tree
// where it does all (kernelExecs), as the tree would say it of that exec
// alone where possible.
func (tr *Tree) kernelNote(plan *execsw.Plan, c *caller, req *execsw.Request) string {
	switch {
	case plan.Compat:
		return treeCompatNote
	case setIDKernelNote(plan, uint32(c.personality), req.RlimitStack) != "":
		return setIDKernelNote(plan, uint32(c.personality), req.RlimitStack)
	case plan.Cred.SetID && !c.maySetID():
		return setIDCapsNote
	case plan.Cred.Downgraded:
		return downgradedNote
	case !c.maySetExe():
		return kernelExeNote
	}
	return tr.allNote
}

// underRoot is host path p as a process whose root is the host path root
// names it, as getcwd(3) there does; p itself where it is outside root.
func underRoot(p, root string) string {
	if root == "" || root == "/" {
		return p
	}
	if p == root {
		return "/"
	}
	if rest, ok := strings.CutPrefix(p, root+"/"); ok {
		return "/" + rest
	}
	return p
}

// kernelIgnored says why the kernel's own exec of plan does not apply
// set-id bits or file capabilities: as the plan says, but where the plan
// gives the caller's ids only because uexec could not raise them
// (Cred.Downgraded), which the kernel does.
func kernelIgnored(plan *execsw.Plan) string {
	if plan.Cred.Downgraded {
		return ""
	}
	return plan.Cred.IgnoredNote()
}

// unreadableBy reports whether the caller may not read one of the plan's
// files: the kernel then makes the new image non-dumpable (fs/exec.c
// would_dump), so that it cannot be read through /proc or ptrace.
func unreadableBy(c *caller, plan *execsw.Plan) bool {
	for _, f := range planFileList(plan) {
		h, err := hostFD(f)
		if err != nil {
			return true
		}
		var st unix.Stat_t
		err = unix.Fstat(int(h.fd), &st)
		if h.opened != nil {
			h.opened.Close()
		}
		if err != nil || !mayAccess(&c.cred, &st, mayR) {
			return true
		}
	}
	return false
}
