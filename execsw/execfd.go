package execsw

import (
	"os"
	"strconv"
	"strings"
)

// atFlagsPreserveArgv0 is AT_FLAGS_PRESERVE_ARGV0 (include/uapi/linux/binfmts.h):
// AT_FLAGS says that the interpreter's argv[2] is the caller's argv[0].
const atFlagsPreserveArgv0 = 1

// oCloexec is O_CLOEXEC as /proc/PID/fdinfo's flags field shows it (octal).
const oCloexec = 0o2000000

// lowestFreeFD predicts the descriptor AT_EXECFD gets: the lowest one that
// is free once the close-on-exec descriptors of process pid (0: this one)
// are closed (fs/exec.c begin_new_exec: get_unused_fd_flags after
// do_close_on_exec). It is a prediction: the backend installs the file
// in the new image and writes the number it got.
func lowestFreeFD(pid int) int {
	dir := "/proc/self"
	if pid > 0 {
		dir = "/proc/" + strconv.Itoa(pid)
	}
	ents, err := os.ReadDir(dir + "/fd")
	if err != nil {
		return 3
	}
	kept := map[int]bool{}
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		info, err := os.ReadFile(dir + "/fdinfo/" + e.Name())
		if err != nil {
			continue // closed meanwhile (this reader's own directory descriptor)
		}
		if !closeOnExec(string(info)) {
			kept[n] = true
		}
	}
	fd := 0
	for kept[fd] {
		fd++
	}
	return fd
}

// closeOnExec reads the flags line of a /proc/PID/fdinfo file.
func closeOnExec(info string) bool {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(line, "flags:"); ok {
			f, err := strconv.ParseUint(strings.TrimSpace(v), 8, 64)
			return err == nil && f&oCloexec != 0
		}
	}
	return false
}
