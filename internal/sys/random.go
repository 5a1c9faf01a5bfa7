package sys

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Random reads the kernel's random numbers with getrandom(2), the source
// the kernel draws its own exec randomisation (ASLR, AT_RANDOM) from.
// crypto/rand reads the same source, but its first use in a process costs
// tens of microseconds more, on the path of every exec.
var Random randomReader

type randomReader struct{}

func (randomReader) Read(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		// The system call itself: unix.Getrandom goes through the vDSO's
		// getrandom, whose state the runtime maps and faults in first.
		m, _, errno := unix.Syscall(unix.SYS_GETRANDOM, uintptr(unsafe.Pointer(&b[n])), uintptr(len(b)-n), 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return n, os.NewSyscallError("getrandom", errno)
		}
		n += int(m)
	}
	return n, nil
}
