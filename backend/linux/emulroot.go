package linux

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/execsw"
)

// An extended plan (execsw.Plan.Extended: a name found under the emulation
// root) is not the kernel's exec of the same request: the kernel would
// resolve the names in the real root and run other files, or none. The
// drivers that hand an exec to the kernel because its exec is exact (an
// ordinary user, whose stub cannot set /proc/PID/exe) build such a plan
// with the stub instead, and refuse it where only the kernel could run it
// (a 32-bit image, set-id ids the stub cannot give).

// noKernelExec is the error of an extended plan that only the kernel could
// have run: why is the reason the kernel would have got it.
func noKernelExec(req *execsw.Request, plan *execsw.Plan, why string, errno unix.Errno) error {
	return &execsw.ExecError{Path: req.Path, Reason: fmt.Sprintf("%s, and the kernel's exec would not see the %s", why, plan.Extended), Err: errno}
}

// stubExeNote says what an ordinary user's extended plan shows in
// /proc/PID/exe.
func stubExeNote(plan *execsw.Plan) string {
	return fmt.Sprintf("/proc/PID/exe names the stub: the plan uses the %s, which the kernel's exec would not, and prctl(PR_SET_MM_MAP) refuses exe_fd without CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE", plan.Extended)
}
