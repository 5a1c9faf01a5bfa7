//go:build linux && amd64

package linux

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// ptraceSiginfo reports whether the tracee's stop has a siginfo: a
// signal-delivery-stop has one, a group-stop gives EINVAL.
func ptraceSiginfo(pid int) error {
	var buf [128]byte // sizeof(siginfo_t)
	_, _, e := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_GETSIGINFO, uintptr(pid), 0, uintptr(unsafe.Pointer(&buf[0])), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// ptraceDetach detaches from pid, delivering sig.
func ptraceDetach(pid, sig int) error {
	_, _, e := unix.RawSyscall6(unix.SYS_PTRACE, unix.PTRACE_DETACH, uintptr(pid), 0, uintptr(sig), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}
