//go:build linux && amd64

package linux

import (
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// seccompNotif is struct seccomp_notif (include/uapi/linux/seccomp.h).
type seccompNotif struct {
	id    uint64
	pid   uint32
	flags uint32
	nr    int32
	arch  uint32
	ip    uint64
	args  [6]uint64
}

// seccompNotifResp is struct seccomp_notif_resp.
type seccompNotifResp struct {
	id    uint64
	val   int64
	error int32
	flags uint32
}

// seccompNotifAddfd is struct seccomp_notif_addfd.
type seccompNotifAddfd struct {
	id         uint64
	flags      uint32
	srcfd      uint32
	newfd      uint32
	newfdFlags uint32
}

func ioctlPtr(fd int, req uint, arg unsafe.Pointer) (uintptr, error) {
	r, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(arg))
	if e != 0 {
		return r, e
	}
	return r, nil
}

// notifSyncWakeUp asks that a caller and the thread serving listener wake
// each other on the waker's CPU (SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP, Linux
// 6.6): the caller waits while it is served, and waking an idle vCPU
// instead costs 20-45 µs here, twice per exec (the notification, and each
// SECCOMP_IOCTL_NOTIF_ADDFD). Older kernels refuse it (EINVAL), harmlessly.
func notifSyncWakeUp(listener int) error {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(listener), unix.SECCOMP_IOCTL_NOTIF_SET_FLAGS, unix.SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP)
	if e != 0 {
		return os.NewSyscallError("ioctl(SECCOMP_IOCTL_NOTIF_SET_FLAGS)", e)
	}
	return nil
}

// notifRecv waits for the next notification on listener.
func notifRecv(listener int, n *seccompNotif) error {
	*n = seccompNotif{}
	_, err := ioctlPtr(listener, unix.SECCOMP_IOCTL_NOTIF_RECV, unsafe.Pointer(n))
	return err
}

// notifSend answers notification id: CONTINUE (the kernel runs the call),
// or the call's result (-errno in errno, or val).
func notifSend(listener int, id uint64, cont bool, errno int32, val int64) error {
	r := seccompNotifResp{id: id, val: val, error: errno}
	if cont {
		r = seccompNotifResp{id: id, flags: unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE}
	}
	_, err := ioctlPtr(listener, unix.SECCOMP_IOCTL_NOTIF_SEND, unsafe.Pointer(&r))
	return err
}

// notifValid reports whether notification id is still pending: the caller
// has not died nor been interrupted since it was received.
func notifValid(listener int, id uint64) bool {
	_, err := ioctlPtr(listener, unix.SECCOMP_IOCTL_NOTIF_ID_VALID, unsafe.Pointer(&id))
	return err == nil
}

// notifAddfd installs a copy of our descriptor src in the caller of
// notification id, at the lowest free number, and returns that number.
func notifAddfd(listener int, id uint64, src int, cloexec bool) (int, error) {
	a := seccompNotifAddfd{id: id, srcfd: uint32(src)}
	if cloexec {
		a.newfdFlags = unix.O_CLOEXEC
	}
	r, err := ioctlPtr(listener, unix.SECCOMP_IOCTL_NOTIF_ADDFD, unsafe.Pointer(&a))
	return int(r), err
}

// ptraceSigmask gets (get) or sets the blocked set of tracee pid.
func ptraceSigmask(pid int, get bool, mask *uint64) error {
	req := unix.PTRACE_SETSIGMASK
	if get {
		req = unix.PTRACE_GETSIGMASK
	}
	_, _, e := unix.Syscall6(unix.SYS_PTRACE, uintptr(req), uintptr(pid), 8, uintptr(unsafe.Pointer(mask)), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// servePoll is poll(2) for the serving thread's wait for the next
// notification. Where this process has more than one P it is a raw system
// call: the serving goroutine, locked to its thread, keeps its P while it
// sleeps there. Through syscall.Syscall the runtime marked the P as in a
// system call, and its return had to get a P back, waking another thread
// of the runtime's to do so: a trace of 200 execs of a tree (tracefs,
// sched_switch) counted 999 switches to uexec's threads, 368 of them
// waking the idle vCPU, against 436 and 84 this way, and the caller's
// notified execve came back in 22-28 µs (median; p75 23-29) against 22-45
// (p75 32-58). The P held costs nothing the tree needs: the other runs
// every other goroutine; the garbage collector's stop and the scheduler's
// preemption (every 10 ms) interrupt the call with a signal (EINTR, which
// the serving loop retries; TestTreeServingStopsForGC). Where that would
// leave no P to the rest of the process (one P, or as many trees served at
// once as Ps), which would then wait for that preemption, the call is the
// runtime's.
func servePoll(fds []unix.PollFd, timeout int) (int, error) {
	if int(rawServers.Add(1)) >= runtime.GOMAXPROCS(0) {
		rawServers.Add(-1)
		return unix.Poll(fds, timeout)
	}
	defer rawServers.Add(-1)
	var ts *unix.Timespec
	if timeout >= 0 {
		t := unix.NsecToTimespec(int64(timeout) * 1e6)
		ts = &t
	}
	r, _, e := syscall.RawSyscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(&fds[0])), uintptr(len(fds)), uintptr(unsafe.Pointer(ts)), 0, 0, 0)
	if e == unix.EINTR {
		// A raw call is no preemption point: the stop that the signal
		// asked for is made here, whatever the caller's loop inlines.
		runtime.Gosched()
	}
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// rawServers counts the serving threads in servePoll's raw call: each
// holds a P, and one P at least stays the rest of the process's (another
// tree's serving thread then waits in the runtime's poll).
var rawServers atomic.Int32
