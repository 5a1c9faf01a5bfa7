package veriexec

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/execsw"
	"github.com/uexec/uexec/vm"
)

// Strict is veriexec's strict level (kern.veriexec.strict).
type Strict int

const (
	Learning Strict = iota // 0: everything runs; mismatches are reported
	IDS                    // 1: a listed file whose fingerprint differs is refused
	IPS                    // 2: unlisted files and wrong access types are refused too
	Lockdown               // 3: as IPS for execs (NetBSD also refuses opens and file creation)
)

func (s Strict) String() string {
	switch s {
	case Learning:
		return "learning"
	case IDS:
		return "IDS"
	case IPS:
		return "IPS"
	case Lockdown:
		return "lockdown"
	}
	return fmt.Sprintf("strict(%d)", int(s))
}

// Policy checks execs against a Table at a strict level; it is an
// execsw.Policy and an execsw.UnplannedPolicy. It is safe for concurrent
// use.
type Policy struct {
	t      *Table
	strict Strict
	// Logf reports what veriexec_file_report reports: mismatches and
	// wrong access types, refused or not. nil reports nothing.
	Logf func(format string, args ...any)

	mu    sync.Mutex
	cache map[version][]byte
}

// version is a file's identity and version: a changed file (a write
// changes ctime) is hashed again.
type version struct {
	dev, ino     uint64
	size         int64
	mtime, ctime unix.Timespec
	digest       *digest
}

// maxCache bounds the fingerprint cache; it starts over when full.
const maxCache = 4096

// Policy returns t's policy at the strict level s.
func (t *Table) Policy(s Strict) *Policy {
	return &Policy{t: t, strict: s, cache: map[version][]byte{}}
}

// testAfterVerify, when a test sets it, runs after a file was verified
// (and, from IDS on, pinned), before the exec goes on: the window between the check and
// the mapping, widened.
var testAfterVerify func(path string)

// Check is veriexec_verify for one file of an exec.
func (p *Policy) Check(c *execsw.PolicyCheck) error {
	if p.strict == Learning && p.t.Len() == 0 {
		return nil // kern_veriexec.c: strict 0 and no entries bypasses all
	}
	want, use := Direct, "directly"
	if c.Use == execsw.Indirect {
		want, use = Indirect, "as an interpreter"
	}
	name := fileName(c)
	e := p.t.lookup(name, c.Attr.Dev, c.Attr.Ino)
	if e == nil {
		// veriexec_file_verify: IPS denies the exec of a file not
		// monitored; below IPS it runs, unreported.
		if p.strict >= IPS {
			return p.refuse(c, "veriexec: no fingerprint listed in %s for %s (strict level %d, %v)", p.t.Name, name, p.strict, p.strict)
		}
		return nil
	}
	sum, err := p.fingerprint(c, e)
	if err != nil {
		// veriexec_fp_calc's error ends the exec, at any level.
		return &execsw.ExecError{Path: c.Path, Reason: "veriexec: cannot compute the fingerprint", Err: err}
	}
	if !bytes.Equal(sum, e.Fingerprint) {
		// FINGERPRINT_NOMATCH: IDS and above deny; below, it is reported
		// (a refusal is the exec's error, and the exec log's).
		if p.strict >= IDS {
			return p.refuse(c, "veriexec: fingerprint mismatch: %s of %s is %s, %s:%d lists %s", e.Type, name, hex.EncodeToString(sum), p.t.Name, e.Line, hex.EncodeToString(e.Fingerprint))
		}
		p.report("%s: fingerprint mismatch: %s %s, listed %s at %s:%d (strict level %d: runs)", name, e.Type, hex.EncodeToString(sum), hex.EncodeToString(e.Fingerprint), p.t.Name, e.Line, p.strict)
		return nil
	}
	if e.Flags&want == 0 {
		// FINGERPRINT_VALID of the wrong type: "Incorrect access type",
		// denied from IPS on.
		if p.strict >= IPS {
			return p.refuse(c, "veriexec: incorrect access type: %s exec'd %s, %s:%d lists it as %v", name, use, p.t.Name, e.Line, e.Flags)
		}
		p.report("%s: incorrect access type: exec'd %s, listed as %v at %s:%d (strict level %d: runs)", name, use, e.Flags, p.t.Name, e.Line, p.strict)
	}
	if p.strict >= IDS {
		a := c.Attr
		c.File.Pin = &vm.Pin{Size: a.Size, Mtime: [2]int64{a.Mtime.Sec, a.Mtime.Nsec}, Ctime: [2]int64{a.Ctime.Sec, a.Ctime.Nsec}}
	}
	if testAfterVerify != nil {
		testAfterVerify(name)
	}
	return nil
}

// Unplanned refuses, from IPS on, an exec the kernel would do without any
// file of it checked: IPS lets nothing unverified run. Below IPS an
// unlisted file runs anyway, so the kernel may do it.
func (p *Policy) Unplanned(path, why string) error {
	if p.strict == Learning && p.t.Len() == 0 {
		return nil
	}
	if p.strict < IPS {
		p.report("%s: not verified: the kernel does this exec (%s)", path, why)
		return nil
	}
	return &execsw.ExecError{Path: path, Reason: fmt.Sprintf("veriexec: not verifiable (strict level %d): %s", p.strict, why), Err: unix.EPERM}
}

func (p *Policy) refuse(c *execsw.PolicyCheck, format string, a ...any) error {
	return &execsw.ExecError{Path: c.Path, Reason: fmt.Sprintf(format, a...), Err: unix.EPERM}
}

func (p *Policy) report(format string, a ...any) {
	if p.Logf != nil {
		p.Logf("veriexec: "+format, a...)
	}
}

// fingerprint returns the digest of c's file, read through the descriptor
// the image will be mapped from. It is cached by the file's identity and
// version, except for untrusted entries (hashed at every use, as
// kern_veriexec.c does for VERIEXEC_UNTRUSTED).
func (p *Policy) fingerprint(c *execsw.PolicyCheck, e *Entry) ([]byte, error) {
	a := c.Attr
	v := version{dev: a.Dev, ino: a.Ino, size: a.Size, mtime: a.Mtime, ctime: a.Ctime, digest: e.digest}
	cache := e.Flags&Untrusted == 0
	if cache {
		p.mu.Lock()
		sum, ok := p.cache[v]
		p.mu.Unlock()
		if ok {
			return sum, nil
		}
	}
	sum, err := hashFile(c.File, a, e.digest)
	if err != nil || !cache {
		return sum, err
	}
	p.mu.Lock()
	if len(p.cache) >= maxCache {
		p.cache = map[version][]byte{}
	}
	p.cache[v] = sum
	p.mu.Unlock()
	return sum, nil
}

// hashFile hashes the first a.Size bytes of f and checks that the file
// was not changed meanwhile (a version other than a's would be cached
// under a's, or pinned as a's).
func hashFile(f *vm.File, a execsw.Attr, d *digest) ([]byte, error) {
	h := d.new()
	n, err := io.Copy(h, io.NewSectionReader(f.R, 0, a.Size))
	if err != nil {
		return nil, fmt.Errorf("read: %v: %w", err, unix.EIO)
	}
	if n != a.Size {
		return nil, fmt.Errorf("read %d of %d bytes: the file shrank: %w", n, a.Size, unix.EPERM)
	}
	if fd, ok := f.R.(interface{ Fd() uintptr }); ok {
		var st unix.Stat_t
		if err := unix.Fstat(int(fd.Fd()), &st); err != nil {
			return nil, fmt.Errorf("fstat: %w", err)
		}
		if st.Size != a.Size || st.Mtim != a.Mtime || st.Ctim != a.Ctime {
			return nil, fmt.Errorf("the file changed while its fingerprint was computed: %w", unix.EPERM)
		}
	}
	return h.Sum(nil), nil
}

// fileName is the name a file is listed by: the path the kernel prints
// for its descriptor (every symlink resolved, as Load resolves the
// table's paths), else the name the exec resolved.
func fileName(c *execsw.PolicyCheck) string {
	if c.File != nil {
		if n := c.File.Name(); n != "" && n[0] == '/' {
			return n
		}
	}
	return c.Resolved
}
