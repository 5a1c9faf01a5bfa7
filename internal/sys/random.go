package sys

import (
	"os"

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
		m, err := unix.Getrandom(b[n:], 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, os.NewSyscallError("getrandom", err)
		}
		n += m
	}
	return n, nil
}
