package execsw

import (
	"errors"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/vm"
)

// The emulation root is NetBSD's TRYEMULROOT lookup (sys/kern/vfs_lookup.c
// namei_tryemulroot; sys/compat/common/compat_util.c for the interpreter):
// an absolute name of the program, of a #! interpreter or of PT_INTERP is
// looked up under Request.EmulRoot first and, when the walk fails there,
// again in the caller's root. lookupFrom holds the walk's rules; this file
// decides when the emulation root is tried and what the plan records.
//
// Relative names are not tried under the emulation root. NetBSD's
// namei_getstartdir starts them at the cwd without it; its makepathbuf
// makes an exec's relative path absolute first (so there it would try the
// root too), but the cwd is a directory of the real root, and a program
// that runs "./configure-test" means the file its open("./...") sees.

// emulHit is a name that resolved under the emulation root to another file
// than the kernel's lookup of the same name gives.
type emulHit struct {
	name, host string
}

// emulComps returns the emulation root's components from the caller's
// root, and whether name is looked up under it: an absolute name with an
// emulation root set inside the caller's root. A name starting "/../" is
// tried too: it starts at the real root, but absolute symlinks met on the
// way still start at the emulation root (namei_getstartdir keeps
// ni_erootdir).
func (epp *Package) emulComps(name string) ([]string, bool) {
	e := epp.Req.EmulRoot
	if e == "" || !strings.HasPrefix(name, "/") {
		return nil, false
	}
	if r := strings.TrimSuffix(epp.Req.Root, "/"); r != "" {
		if e != r && !strings.HasPrefix(e, r+"/") {
			return nil, false // out of the caller's reach
		}
		e = e[len(r):]
	}
	comps := splitPath(e)
	return comps, len(comps) > 0
}

// retryInRealRoot reports whether a failed lookup under the emulation root
// is tried again from the caller's root: after any error of the component
// loop (ENOENT, ENOTDIR, EACCES, ENAMETOOLONG of a component...), not after
// one of following a symlink (ELOOP), as namei_oneroot sets attempt_retry.
func retryInRealRoot(err error) bool {
	return !errors.Is(err, unix.ELOOP)
}

// emulFound records that name, looked up under the emulation root, was
// opened as vf (host is its host path). The plan is extended only when
// the kernel's own lookup of name (from uexec's root, the caller's here)
// names another file: a name whose emulation lookup reaches the real
// file anyway (a symlink back, ".." out of the root) changes nothing.
func (epp *Package) emulFound(name, host string, vf *vm.File, noFollow bool) {
	var st unix.Stat_t
	stat := unix.Stat
	if noFollow {
		stat = unix.Lstat
	}
	if err := stat(epp.hostPath(name), &st); err == nil && st.Dev == vf.Dev && st.Ino == vf.Ino {
		return
	}
	epp.emulHits = append(epp.emulHits, emulHit{name: name, host: host})
	if epp.Extended == "" {
		epp.Extended = "emulation root " + epp.Req.EmulRoot
	}
}

// emulPlan records the emulation root on p, and on each link of its chain
// whose name was found under it the host file it was found as.
func (epp *Package) emulPlan(p *Plan) {
	p.EmulRoot = epp.Req.EmulRoot
	for i := range p.Chain {
		for _, h := range epp.emulHits {
			if p.Chain[i].Path == h.name {
				p.Chain[i].Host = h.host
				break
			}
		}
	}
}

// InterpName is the name an interpreter is given for the file being
// executed now (a #! script's, a binfmt_misc rule's file name): the path
// as passed, or, for a file found under the emulation root where the
// name names another file in the caller's root, that file's path in the
// caller's root (DIR/bin/script). The interpreter opens the name itself,
// with no emulation root: the name as passed would make it read another
// file than the one planned (and verified).
func (epp *Package) InterpName() string {
	for _, h := range epp.emulHits {
		if h.name == epp.Path {
			if r := strings.TrimSuffix(epp.Req.Root, "/"); r != "" {
				return strings.TrimPrefix(h.host, r)
			}
			return h.host
		}
	}
	return epp.Path
}
