//go:build linux && amd64

package kernelexec

import (
	"fmt"
	"syscall"
)

// launcherSource is the launcher: argv is
//
//	launch TRACE PERSONALITY NLIMITS [RESOURCE CUR MAX]... PATH [ARGV...]
//
// It ORs PERSONALITY into its personality, sets the limits, calls
// PTRACE_TRACEME when TRACE is 1 and execs PATH with the remaining
// arguments (none gives argc 0) and its own environment. Exit status: the
// errno of a failed execve, or 250 + the step that failed before it.
const launcherSource = `#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/resource.h>

int main(int argc, char **argv, char **envp) {
	int i = 1;
	if (argc < 5) return 250;
	int trace = atoi(argv[i++]);
	unsigned long pers = strtoul(argv[i++], 0, 10);
	int n = atoi(argv[i++]);
	if (pers != 0) {
		int old = personality(0xffffffff);
		if (old == -1 || personality((unsigned long)old | pers) == -1) return 251;
	}
	for (int k = 0; k < n; k++) {
		if (i + 3 > argc) return 250;
		int res = atoi(argv[i++]);
		struct rlimit rl;
		rl.rlim_cur = strtoull(argv[i++], 0, 10);
		rl.rlim_max = strtoull(argv[i++], 0, 10);
		if (setrlimit(res, &rl) == -1) return 252;
	}
	if (i >= argc) return 250;
	char *path = argv[i++];
	if (trace && ptrace(PTRACE_TRACEME, 0, 0, 0) == -1) return 253;
	execve(path, &argv[i], envp);
	return errno;
}
`

// launcher returns the path of the compiled launcher.
func launcher() (string, error) {
	return compileC("launch", launcherSource, nil)
}

// launcherExit explains a launcher's exit status.
func launcherExit(pid, status int) error {
	switch {
	case status > 0 && status < 250:
		return fmt.Errorf("kernelexec: pid %d: execve: %w", pid, syscall.Errno(status))
	case status >= 250 && status <= 253:
		step := [...]string{"usage", "personality", "setrlimit", "ptrace(PTRACE_TRACEME)"}[status-250]
		return fmt.Errorf("kernelexec: pid %d: launcher failed at %s", pid, step)
	}
	return fmt.Errorf("kernelexec: pid %d: exited with status %d before its exec", pid, status)
}
