package execsw

import "golang.org/x/sys/unix"

// newCred computes the credentials after exec (Linux bprm_fill_uid and
// cap_bprm_creds_from_file; the seed's set-id block in execve1). epp.Attr
// is the file the ELF handler loaded as the program: for a #! script the
// interpreter, so a script's own set-id bits never count.
func newCred(epp *Package) NewCred {
	c := &epp.Req.Cred
	n := NewCred{UID: c.UID, EUID: c.EUID, GID: c.GID, EGID: c.EGID}
	attr := epp.Attr
	if epp.CredFromExecFD {
		// binfmt_misc C: the file exec'd, not its interpreter.
		attr = epp.execAttr
	}
	mode := attr.Mode
	setuid := mode&unix.S_ISUID != 0
	setgid := mode&unix.S_ISGID != 0 && mode&unix.S_IXGRP != 0
	switch {
	case !setuid && !setgid:
	case attr.NoSuid:
		// checkOpened already stripped the bits; kept for clarity.
		n.Ignored = "nosuid mount"
	case c.NoNewPrivs:
		n.Ignored = "no_new_privs"
	default:
		if setuid {
			n.EUID = attr.UID
		}
		if setgid {
			n.EGID = attr.GID
		}
	}
	isSetID := n.EUID != c.UID || n.EGID != c.GID
	if isSetID && epp.Req.Downgrade {
		// A tracer without CAP_SYS_PTRACE over the new credentials: the
		// kernel runs the program with the caller's ids, yet still marks
		// the exec secure.
		n.EUID, n.EGID = c.UID, c.GID
		n.Ignored = "uexec cannot raise privileges (not root)"
		n.Downgraded = true
	} else if isSetID {
		n.SetID = true
	}
	n.SUID, n.SGID = n.EUID, n.EGID
	n.Secure = isSetID
	return n
}

// IgnoredNote says, for an exec log, why set-id bits of the program were
// present but not applied; "" when they were applied or absent.
func (n NewCred) IgnoredNote() string {
	if n.Ignored == "" {
		return ""
	}
	return "set-id bits not applied: " + n.Ignored
}
