package sys

import (
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// vaSpace keeps /proc/sys/kernel/randomize_va_space open: the kernel reads
// the setting at every exec, and so does uexec, with one pread instead of
// an open, a read and a close (a /proc/sys open is the dearest part).
var vaSpace = struct {
	sync.Mutex
	fd int
}{fd: -1}

// RandomizeVASpace returns kernel.randomize_va_space as the kernel's next
// exec would read it.
func RandomizeVASpace() (int, error) {
	vaSpace.Lock()
	defer vaSpace.Unlock()
	if vaSpace.fd < 0 {
		fd, err := unix.Open("/proc/sys/kernel/randomize_va_space", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return 0, err
		}
		vaSpace.fd = fd
	}
	var b [16]byte
	n, err := unix.Pread(vaSpace.fd, b[:], 0)
	for err == unix.EINTR {
		n, err = unix.Pread(vaSpace.fd, b[:], 0)
	}
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b[:n])))
}
