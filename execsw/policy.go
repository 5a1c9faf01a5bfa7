package execsw

import (
	"errors"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/vm"
)

// Use is how an exec uses a file, as NetBSD's veriexec tells them apart
// (VERIEXEC_DIRECT, VERIEXEC_INDIRECT).
type Use int

const (
	// Direct: the file is the program the caller named.
	Direct Use = iota + 1
	// Indirect: the file is an interpreter of it: a #! interpreter, an
	// ELF PT_INTERP or a binfmt_misc rule's interpreter.
	Indirect
)

func (u Use) String() string {
	switch u {
	case Direct:
		return "direct"
	case Indirect:
		return "indirect"
	}
	return "use(?)"
}

// Policy is a check check_exec makes on every file an exec opens, after
// the permission checks and before the header is read (the seed's
// veriexec_verify and pax_segvguard). Check returns nil to let the exec go
// on, or an error wrapping the errno the caller's execve gets (NetBSD's
// policies refuse with EPERM); the exec then fails and nothing has
// changed in the caller.
type Policy interface {
	Check(c *PolicyCheck) error
}

// PolicyCheck is what a policy is asked about.
type PolicyCheck struct {
	Req  *Request // the exec: the caller's credentials, path, argv
	Path string   // the name the file was opened by
	// Resolved is the name after symlinks, from the caller's root; for
	// a file exec'd by descriptor, its /dev/fd name.
	Resolved string
	File     *vm.File // the opened file: what is read is what is mapped
	Attr     Attr
	Use      Use
}

// checkPolicies asks each of the switch's policies about f.
func (epp *Package) checkPolicies(f *vm.File, name, resolved string, attr Attr, use Use) error {
	if len(epp.Sw.Policies) == 0 {
		return nil
	}
	c := &PolicyCheck{Req: epp.Req, Path: name, Resolved: resolved, File: f, Attr: attr, Use: use}
	for _, p := range epp.Sw.Policies {
		if err := p.Check(c); err != nil {
			if _, ok := err.(*ExecError); ok {
				return err
			}
			return &ExecError{Path: name, Reason: "refused by policy", Err: errnoOr(err, unix.EPERM)}
		}
	}
	if f.Pin != nil && epp.Extended == "" {
		// The kernel would open the file again by its name and could
		// run other bytes than the ones verified: the plan is the
		// stub's, which maps this descriptor.
		epp.Extended = PinnedFiles
	}
	return nil
}

// PinnedFiles is Plan.Extended of a plan with files a policy pinned
// (vm.File.Pin).
const PinnedFiles = "files as the policy verified them"

// An UnplannedPolicy is a Policy that is also asked about an exec a
// backend would leave to the kernel without planning it (no file of it
// was checked: a 32-bit system call, a caller uexec cannot read). A
// non-nil error refuses the exec with its errno.
type UnplannedPolicy interface {
	Unplanned(path, why string) error
}

// CheckUnplanned asks the switch's policies that implement UnplannedPolicy
// about an exec of path the kernel would do unchecked, for the reason why.
func (s *Switch) CheckUnplanned(path, why string) error {
	if s == nil {
		return nil
	}
	for _, p := range s.Policies {
		if u, ok := p.(UnplannedPolicy); ok {
			if err := u.Unplanned(path, why); err != nil {
				return err
			}
		}
	}
	return nil
}

// errnoOr returns err when it wraps an errno, else errno wrapping err's text.
func errnoOr(err error, errno unix.Errno) error {
	var e unix.Errno
	if errors.As(err, &e) {
		return err
	}
	return &policyError{msg: err.Error(), errno: errno}
}

type policyError struct {
	msg   string
	errno unix.Errno
}

func (e *policyError) Error() string { return e.msg + ": " + e.errno.Error() }
func (e *policyError) Unwrap() error { return e.errno }
