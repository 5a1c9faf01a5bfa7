package execsw

import (
	"errors"
	"fmt"
)

// KernelOnlyPlan returns, for req whose Execve failed with err, the plan of
// the kernel's own exec of req where only the kernel can make it, or nil:
// err says that uexec may not read a file the caller may execute
// (ErrUnreadable), and nothing of the switch would plan the exec otherwise
// than the kernel does (Native, no emulation root, no descriptor), so the
// kernel's exec of the same request is the exact one. A backend runs it as
// the kernel's; what the program then gets, or the errno, is the kernel's.
func (s *Switch) KernelOnlyPlan(req *Request, err error) *Plan {
	if !errors.Is(err, ErrUnreadable) || req.EmulRoot != "" || req.File != nil || !s.Native() {
		return nil
	}
	name := req.Path
	var ee *ExecError
	if errors.As(err, &ee) {
		name = ee.Path // the interpreter, say
	}
	return &Plan{
		KernelOnly: fmt.Sprintf("exact by the kernel: uexec may not read %s, which the caller may execute (the kernel maps it unread)", name),
		Comm:       comm(req.Path),
		Cred:       NewCred{UID: req.Cred.UID, EUID: req.Cred.EUID, SUID: req.Cred.EUID, GID: req.Cred.GID, EGID: req.Cred.EGID, SGID: req.Cred.EGID},
	}
}
