package execsw

import (
	"slices"

	"golang.org/x/sys/unix"
)

// SameSearch reports whether a path walk is checked the same for c as
// for o (generic_permission's MAY_EXEC on each directory, and every
// open): the same filesystem ids and groups, and the same two
// capabilities that override them.
func (c *Cred) SameSearch(o *Cred) bool {
	return c.FSUID == o.FSUID && c.FSGID == o.FSGID && slices.Equal(c.Groups, o.Groups) &&
		c.CapDACOverride == o.CapDACOverride && c.CapDACReadSearch == o.CapDACReadSearch
}

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
		// bprm_fill_uid: the caller's PER_CLEAR_ON_SETID personality
		// flags go, whether or not the ids change.
		n.PerClear = true
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
		n.Ignored = "uexec cannot raise the ids (no CAP_SETUID and CAP_SETGID where the image is built): the caller's ids, as under an unprivileged tracer"
		n.Downgraded = true
	} else if isSetID {
		n.SetID = true
	}
	n.SUID, n.SGID = n.EUID, n.EGID
	n.Secure = isSetID
	if fc := attr.Caps; fc.Present && c.UID != 0 {
		// cap_bprm_creds_from_file for a caller whose real uid is not 0:
		// it gains what the file permits (its bounding set and
		// inheritable caps allowing, taken as full here), the exec is
		// then secure and clears the personality flags; no_new_privs
		// takes the gain away again, yet the exec stays secure.
		grows := fc.Effective || fc.Permitted != 0
		switch {
		case attr.NoSuid:
			n.CapsIgnored = "nosuid mount" // get_file_caps: mnt_may_suid
			grows = false
		case c.NoNewPrivs:
			n.CapsIgnored = "no_new_privs"
		default:
			n.FileCaps = true
		}
		n.Secure = n.Secure || grows
		n.PerClear = n.PerClear || grows && fc.Permitted != 0
	}
	return n
}

// IgnoredNote says, for an exec log, why set-id bits or file capabilities
// of the program were present but not applied; "" when they were applied
// or absent.
func (n NewCred) IgnoredNote() string {
	var notes []string
	if n.Ignored != "" {
		notes = append(notes, "set-id bits not applied: "+n.Ignored)
	}
	if n.CapsIgnored != "" {
		notes = append(notes, "file capabilities not applied: "+n.CapsIgnored)
	}
	return JoinNotes(notes...)
}

// layoutParams are the exec's parameters of the new address space that
// begin_new_exec may change once the credentials are known.
type layoutParams struct {
	noRandom  bool   // no PF_RANDOMIZE
	legacy    bool   // ADDR_COMPAT_LAYOUT
	rlimStack uint64 // bprm->rlim_stack's soft limit
}

// stkLim is _STK_LIM, the stack limit a secure exec gets.
const stkLim = 8 << 20

// layout returns the parameters the layout is made with: the request's,
// or those begin_new_exec left (relaid).
func (epp *Package) layout() layoutParams {
	if epp.relaid != nil {
		return *epp.relaid
	}
	return layoutParams{noRandom: epp.Req.NoRandom, legacy: epp.Req.Legacy, rlimStack: epp.Req.RlimitStack}
}

// NoRandom reports whether the new image is laid out without
// randomisation (no PF_RANDOMIZE): the request's NoRandom, unless a set-id
// exec cleared the caller's ADDR_NO_RANDOMIZE.
func (epp *Package) NoRandom() bool { return epp.layout().noRandom }

// afterCreds returns the layout parameters begin_new_exec leaves once the
// credentials of cred are computed: a set-id exec clears the caller's
// PER_CLEAR_ON_SETID personality flags, ADDR_NO_RANDOMIZE and
// ADDR_COMPAT_LAYOUT among them (begin_new_exec: personality &=
// ~bprm->per_clear; randomize_va_space 0 and vm.legacy_va_layout still
// hold), and a secure one lowers the stack limit to _STK_LIM at
// most ("to avoid bad behavior from the prior rlimits"), before setup_new_exec
// lays the address space out. The arguments were measured against the
// caller's limit before that (bprm_stack_limits).
func (epp *Package) afterCreds(cred NewCred) layoutParams {
	l := epp.layout()
	if cred.PerClear {
		l.noRandom = l.noRandom && epp.Machine().NoRandomize
		l.legacy = false
	}
	if cred.Secure {
		l.rlimStack = min(l.rlimStack, stkLim)
	}
	return l
}
