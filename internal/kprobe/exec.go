package kprobe

import (
	"errors"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// execDeadline bounds the wait for the kernel's answer to Exec: an exec
// that has not stopped or failed by then (a file on a hung network mount)
// is not answered.
const execDeadline = 10 * time.Second

// Exec asks the kernel what its exec of path with argv and env, from
// directory dir, gives this process, without letting anything of the new
// image run: a child traced from its start (PTRACE_TRACEME) makes the exec
// and is killed at the stop the kernel makes once the exec is done, before
// the image's first instruction. It returns the errno of an exec that
// fails, 0 for one that completes (or kills its process past the point of
// no return), and ok false where the kernel could not be asked: the child
// could not be traced (this process is traced itself, or a filter refuses
// ptrace: that EPERM cannot be told from the exec's), or it did not answer
// within execDeadline.
func Exec(path string, argv, env []string, dir string) (errno unix.Errno, ok bool) {
	// A tracee's stops are its tracer thread's to wait for.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// This process's descriptors (0 to 2, those without FD_CLOEXEC, and
	// until the exec the others): a path through them is resolved as here.
	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{Dir: dir, Env: env, Files: []uintptr{0, 1, 2},
		Sys: &syscall.SysProcAttr{Ptrace: true}})
	if err != nil {
		var e syscall.Errno
		if !errors.As(err, &e) || e == syscall.EPERM {
			return 0, false
		}
		return unix.Errno(e), true
	}
	timer := time.AfterFunc(execDeadline, func() { unix.Kill(pid, unix.SIGKILL) })
	ws, werr := wait(pid)
	late := !timer.Stop()
	if werr != nil || ws.Stopped() {
		unix.Kill(pid, unix.SIGKILL)
		wait(pid)
	}
	return 0, werr == nil && !late
}

func wait(pid int) (unix.WaitStatus, error) {
	var ws unix.WaitStatus
	for {
		if _, err := unix.Wait4(pid, &ws, unix.WALL, nil); err != unix.EINTR {
			return ws, err
		}
	}
}
