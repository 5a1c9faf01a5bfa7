//go:build linux && amd64

package linux

import (
	"golang.org/x/sys/unix"
)

// ptraceDetach detaches from pid, delivering sig.
func ptraceDetach(pid, sig int) error {
	_, _, e := unix.RawSyscall6(unix.SYS_PTRACE, unix.PTRACE_DETACH, uintptr(pid), 0, uintptr(sig), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}
