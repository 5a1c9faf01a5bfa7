package veriexec

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/uexec/uexec/execsw"
)

// A Learner is a Policy that refuses nothing and records every file an
// exec opens, with its SHA256 fingerprint and how it was used (direct,
// indirect, or both), as a signatures file that Load accepts as it is:
// what veriexecctl users make with veriexecgen, from a run instead of a
// directory walk.
//
// The file is rewritten, atomically (a temporary file renamed over it),
// whenever an entry is added or gains a flag: a uexec killed at any time
// leaves the signatures of everything exec'd until then.
type Learner struct {
	// Path is the signatures file written.
	Path string
	// Logf reports files that cannot be written in the format (a path
	// with blanks) and write errors; nil reports nothing.
	Logf func(format string, args ...any)

	mu     sync.Mutex
	t      *Table
	sums   map[version][]byte
	err    error
	writes int
}

// NewLearner returns a Learner that writes path.
func NewLearner(path string) *Learner {
	return &Learner{Path: path, t: newTable(path), sums: map[version][]byte{}}
}

// Check records c's file; it always lets the exec go on.
func (l *Learner) Check(c *execsw.PolicyCheck) error {
	flag := Direct
	if c.Use == execsw.Indirect {
		flag = Indirect
	}
	name := fileName(c)
	if !writable(name) {
		l.logf("veriexec: learn: %q cannot be written in a signatures file (blanks or not absolute); not recorded", name)
		return nil
	}
	d := digests[0] // SHA256
	a := c.Attr
	v := version{dev: a.Dev, ino: a.Ino, size: a.Size, mtime: a.Mtime, ctime: a.Ctime, digest: d}
	l.mu.Lock()
	sum, ok := l.sums[v]
	l.mu.Unlock()
	if !ok {
		var err error
		if sum, err = hashFile(c.File, a, d); err != nil {
			l.logf("veriexec: learn: %s: %v; not recorded", name, err)
			return nil
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sums[v] = sum
	if e, ok := l.t.byPath[name]; ok {
		if !bytes.Equal(e.Fingerprint, sum) {
			// The file changed during the run: the version exec'd last
			// is the one recorded.
			e.Fingerprint, e.Flags = sum, 0
		}
		if e.Flags&flag != 0 {
			return nil
		}
		e.Flags |= flag
	} else {
		l.t.add(&Entry{Path: name, Type: d.name, Fingerprint: sum, Flags: flag, digest: d})
	}
	l.writeLocked()
	return nil
}

// Write writes the signatures file now (also when nothing was exec'd)
// and returns the first error any write met.
func (l *Learner) Write() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writeLocked()
	return l.err
}

// Table returns what was learned so far.
func (l *Learner) Table() *Table {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := newTable(l.Path)
	for _, e := range l.t.entries {
		c := *e
		t.add(&c)
	}
	return t
}

// writeLocked replaces the file with the table: a temporary file in the
// same directory, synced, renamed over it.
//
// Preconditions: l.mu held.
func (l *Learner) writeLocked() {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# veriexec signatures learned by uexec run --veriexec-learn\n")
	l.t.WriteTo(&buf)
	err := writeAtomic(l.Path, buf.Bytes())
	if err != nil {
		l.logf("veriexec: learn: %v", err)
		if l.err == nil {
			l.err = err
		}
	}
	l.writes++
}

func writeAtomic(path string, data []byte) error {
	// What a rename would replace must be a signatures file: a symbolic
	// link is followed (its target is written), anything but a regular
	// file (a device, a FIFO, a directory) is refused.
	if target, err := filepath.EvalSymlinks(path); err == nil {
		path = target
	}
	if st, err := os.Stat(path); err == nil && !st.Mode().IsRegular() {
		errno := syscall.EINVAL
		if st.IsDir() {
			errno = syscall.EISDIR
		}
		return &os.PathError{Op: "write", Path: path, Err: fmt.Errorf("not a regular file: %w", errno)}
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		// Named after the file asked for: the temporary one is ours.
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = &os.PathError{Op: "write", Path: path, Err: pe.Err}
		}
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

func (l *Learner) logf(format string, a ...any) {
	if l.Logf != nil {
		l.Logf(format, a...)
	}
}
