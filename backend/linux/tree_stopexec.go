//go:build linux && amd64

package linux

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/execsw"
)

// Stop at exec in a tree (TreeOptions.StopAtExec, PS_STOPEXEC): a matched
// exec that uexec redirects to the stub keeps its seize past the exec
// event, is followed to the program's entry and detached with SIGSTOP
// (stopexec.go). A matched exec the kernel does (CONTINUE) is seized
// first, with PTRACE_O_TRACEEXEC, followed to the exit of its execve (the
// kernel's first instruction) and detached with SIGSTOP there.

// stopAt reports whether the exec of path (as passed; with plan, also the
// program file it names, absolute with symlinks resolved) is to stop.
func (tr *Tree) stopAt(path, dir string, plan *execsw.Plan) bool {
	match := tr.opts.StopAtExec
	if match == nil || path == "" {
		return false
	}
	return match(path, resolvedProgram(path, dir, plan))
}

// resolvedProgram is the file an exec of path names: absolute, against the
// caller's cwd dir, with symlinks resolved; "" when not known.
func resolvedProgram(path, dir string, plan *execsw.Plan) string {
	if plan == nil || len(plan.Chain) == 0 {
		return ""
	}
	p := plan.Chain[0].Path
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}

// stopFollow follows tid, seized and in a stop at the exec event of the
// stub, to the program's entry and leaves it there in a group stop.
//
// Preconditions: the calling thread seized tid (its options include
// PTRACE_O_TRACESYSGOOD).
func (tr *Tree) stopFollow(tid int, ws *unix.WaitStatus, entryWords int) error {
	watchdog := time.AfterFunc(entryTimeout, func() { unix.Kill(tid, unix.SIGKILL) })
	defer watchdog.Stop()
	wait := func(what string) error {
		if _, err := tr.wait4(tid, ws, unix.WALL); err != nil {
			return os.NewSyscallError("wait4", err)
		}
		if !ws.Stopped() {
			return fmt.Errorf("pid %d: status %#x while waiting for %s: %w", tid, uint32(*ws), what, unix.ECHILD)
		}
		return nil
	}
	if _, err := followToEntry(tid, yamaRestricted(), false, entryWords, wait, ws); err != nil {
		return err
	}
	return detachStopped(tid)
}

// kernelExecTimeout bounds the wait for the exec event of an exec the
// kernel does: one that fails returns to the caller without a stop.
const kernelExecTimeout = 2 * time.Second

// continueStopped lets the kernel do the exec of notification n, seized so
// that the new image stops at its first instruction. It reports whether
// the notification was answered; false leaves it to the caller (tid could
// not be seized: traced by someone else).
func (tr *Tree) continueStopped(listener int, n *seccompNotif, tgid int) (bool, error) {
	tid := int(n.pid)
	const opts = unix.PTRACE_O_TRACEEXEC | unix.PTRACE_O_TRACESYSGOOD
	if _, _, e := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_SEIZE, uintptr(tid), 0, opts, 0, 0); e != 0 {
		return false, os.NewSyscallError("ptrace(PTRACE_SEIZE)", e)
	}
	if err := notifSend(listener, n.id, true, 0, 0); err != nil {
		unix.PtraceDetach(tid)
		return true, err
	}
	var ws unix.WaitStatus
	deadline := time.Now().Add(kernelExecTimeout)
	for {
		pid, err := tr.wait4(tid, &ws, unix.WALL|unix.WNOHANG)
		if err == unix.ECHILD && tid != tgid {
			tid = tgid // a thread that exec'd took the leader's pid
			continue
		}
		if err != nil {
			return true, os.NewSyscallError("wait4", err)
		}
		if pid == 0 {
			if time.Now().After(deadline) {
				// No exec event: the exec failed and the caller runs on.
				unix.PtraceInterrupt(tid)
				if _, err := tr.wait4(tid, &ws, unix.WALL); err == nil && ws.Stopped() {
					unix.PtraceDetach(tid)
				}
				return true, fmt.Errorf("pid %d: no exec event within %v: %w", tid, kernelExecTimeout, unix.ETIMEDOUT)
			}
			time.Sleep(50 * time.Microsecond)
			continue
		}
		if !ws.Stopped() {
			return true, fmt.Errorf("pid %d died in its exec: %w", tid, unix.ESRCH)
		}
		switch {
		case ws.StopSignal() == syscall.SIGTRAP && ws.TrapCause() == unix.PTRACE_EVENT_EXEC:
			// At the entry already; SIGSTOP is sent from the system
			// call's exit stop, which comes next.
			if err := unix.PtraceSyscall(tid, 0); err != nil {
				return true, os.NewSyscallError("ptrace(PTRACE_SYSCALL)", err)
			}
			if _, err := tr.wait4(tid, &ws, unix.WALL); err != nil {
				return true, os.NewSyscallError("wait4", err)
			}
			return true, detachStopped(tid)
		case isEventStop(ws):
			unix.PtraceCont(tid, 0)
		default:
			// A signal: delivered as without us.
			unix.PtraceCont(tid, int(ws.StopSignal()))
		}
	}
}
