package execsw

import (
	"errors"
	"fmt"

	"github.com/uexec/uexec/internal/kprobe"
)

// KernelOnlyPlan returns, for req whose Execve failed with err, the plan of
// the kernel's own exec of req where only the kernel can make it: err says
// that uexec may not read a file the caller may execute (ErrUnreadable),
// and nothing of the switch would plan the exec otherwise than the kernel
// does (Native, no emulation root, no descriptor), so the kernel's exec of
// the same request is the exact one. The kernel is asked first
// (kprobe.Exec, by a traced child that never runs the image): where its
// exec fails, the error is its errno, with no plan, so that a caller goes
// on as execvp(3) would (/bin/sh for ENOEXEC, the next PATH entry for
// ENOENT). Otherwise err is returned as it is, with no plan.
func (s *Switch) KernelOnlyPlan(req *Request, err error) (*Plan, error) {
	if !errors.Is(err, ErrUnreadable) || req.EmulRoot != "" || req.File != nil || !s.Native() {
		return nil, err
	}
	name := req.Path
	var ee *ExecError
	if errors.As(err, &ee) {
		name = ee.Path // the interpreter, say
	}
	// The child asking has this process's descriptors and root, and the
	// request's cwd, at its exec: /dev/fd/N and /proc/self/... name what
	// they name here.
	if errno, ok := kprobe.Exec(req.Path, req.Argv, req.Envp, req.Dir); ok && errno != 0 {
		return nil, &ExecError{Path: req.Path, Reason: "the kernel's exec (uexec may not read " + name + ")", Err: errno}
	}
	return &Plan{
		KernelOnly: fmt.Sprintf("exact by the kernel: uexec may not read %s, which the caller may execute (the kernel maps it unread)", name),
		Comm:       comm(req.Path),
		Cred:       NewCred{UID: req.Cred.UID, EUID: req.Cred.EUID, SUID: req.Cred.EUID, GID: req.Cred.GID, EGID: req.Cred.EGID, SGID: req.Cred.EGID},
	}, nil
}
