package sys

import (
	"bytes"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// ReadFile reads a small file (a /proc or /sys file, the stub) with plain
// system calls: os.ReadFile also registers the descriptor with the
// runtime's poller and asks for its size, five system calls more on the
// path of every exec.
func ReadFile(path string) ([]byte, error) { return readFile(path, 0) }

// ReadFileNoFollow is ReadFile refusing a symbolic link as the last
// component (ELOOP).
func ReadFileNoFollow(path string) ([]byte, error) { return readFile(path, unix.O_NOFOLLOW) }

func readFile(path string, flags int) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|flags, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	buf := make([]byte, 0, 2048) // /proc/PID/status is about 1.5 KiB
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}

// TracerPid returns the pid of this process's tracer (ptrace), 0 when it
// has none or /proc/self/status cannot be read.
func TracerPid() int {
	b, err := ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	_, rest, ok := bytes.Cut(b, []byte("\nTracerPid:"))
	if !ok {
		return 0
	}
	line, _, _ := bytes.Cut(rest, []byte("\n"))
	pid, _ := strconv.Atoi(string(bytes.TrimSpace(line)))
	return pid
}
