package execsw

import (
	"fmt"
	"reflect"
	"sync"

	"golang.org/x/sys/unix"
)

// Entry is one registered exec switch entry (struct execsw).
type Entry struct {
	Format   Format
	Priority Priority

	users int // live processes running an image this entry loaded
}

// Switch is the exec switch: the ordered table of format handlers. The zero
// value is an empty switch. It is safe for concurrent use: execs hold it as
// readers, Add and Remove as the writer (the seed's exec_lock).
type Switch struct {
	mu      sync.RWMutex
	entries []*Entry // in try order: First, Any, Last, each in order added
	hdrsz   int      // the largest HeaderSize (exec_maxhdrsz)

	// Autoload, when set, is called when every handler answered ENOEXEC
	// (the seed's exec_autoload). It may Add handlers; if the switch's
	// generation changed, the check is tried once more.
	Autoload func(*Switch)
	gen      uint64 // bumped by every Add and Remove

	// Policies are asked about every file an exec opens, in order (the
	// seed's check_exec: veriexec, then segvguard). Set them before the
	// switch is used.
	Policies []Policy
}

// Add registers f with priority prio (exec_add). An entry equal to a
// registered one (the same handler value) fails with EEXIST.
func (s *Switch) Add(f Format, prio Priority) error {
	if f == nil || prio < PrioFirst || prio > PrioLast {
		return fmt.Errorf("exec switch: bad entry: %w", unix.EINVAL)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.entries {
		if sameFormat(e.Format, f) {
			return fmt.Errorf("exec switch: %s already registered: %w", f.Name(), unix.EEXIST)
		}
	}
	// exec_init: rebuild the ordered table.
	n := 0
	for n < len(s.entries) && s.entries[n].Priority <= prio {
		n++
	}
	s.entries = append(s.entries, nil)
	copy(s.entries[n+1:], s.entries[n:])
	s.entries[n] = &Entry{Format: f, Priority: prio}
	s.recompute()
	return nil
}

// Remove unregisters f (exec_remove): ENOENT when it is not registered,
// EBUSY while a live process runs an image it loaded.
func (s *Switch) Remove(f Format) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, e := range s.entries {
		if !sameFormat(e.Format, f) {
			continue
		}
		if e.users > 0 {
			return fmt.Errorf("exec switch: %s runs %d live processes: %w", f.Name(), e.users, unix.EBUSY)
		}
		s.entries = append(s.entries[:i], s.entries[i+1:]...)
		s.recompute()
		return nil
	}
	return fmt.Errorf("exec switch: %s not registered: %w", f.Name(), unix.ENOENT)
}

// Native is implemented by a handler that can tell whether its plans are,
// as it stands, only what Linux's own exec makes of a file (Plan.Extended
// stays empty): binfmt_elf, binfmt_script, a binfmt_misc without rules.
type Native interface {
	Native() bool
}

// Native reports whether every plan of s is now the kernel's own exec of
// the request (emulation roots aside, which are the request's): every
// handler is Native, and no policy or autoload can refuse or extend an
// exec. A tree that need not build execs itself then lets the kernel do
// them without planning any that nobody asks about.
func (s *Switch) Native() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.Autoload != nil || len(s.Policies) > 0 {
		return false
	}
	for _, e := range s.entries {
		if n, ok := e.Format.(Native); !ok || !n.Native() {
			return false
		}
	}
	return true
}

// Entries returns the registered formats in the order they are tried.
func (s *Switch) Entries() []Format {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Format, len(s.entries))
	for i, e := range s.entries {
		out[i] = e.Format
	}
	return out
}

// HeaderSize returns how many header bytes an exec reads: the largest
// HeaderSize of the registered handlers.
func (s *Switch) HeaderSize() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.hdrsz
}

// Hold records that a live process runs an image e loaded; Release undoes
// it when the process is gone. Remove refuses e in between.
func (s *Switch) Hold(e *Entry) {
	if e == nil {
		return
	}
	s.mu.Lock()
	e.users++
	s.mu.Unlock()
}

// Release undoes one Hold.
func (s *Switch) Release(e *Entry) {
	if e == nil {
		return
	}
	s.mu.Lock()
	if e.users > 0 {
		e.users--
	}
	s.mu.Unlock()
}

// Preconditions: s.mu held as writer.
func (s *Switch) recompute() {
	s.hdrsz = 0
	for _, e := range s.entries {
		s.hdrsz = max(s.hdrsz, e.Format.HeaderSize())
	}
	s.gen++
}

// sameFormat is the seed's "same makecmds, probe and emulation" test: the
// same handler value. Values of incomparable types are equal only to
// themselves (the same pointer inside the interface).
func sameFormat(a, b Format) bool {
	ta, tb := reflect.TypeOf(a), reflect.TypeOf(b)
	if ta != tb {
		return false
	}
	if ta.Comparable() {
		return a == b
	}
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	switch va.Kind() {
	case reflect.Map, reflect.Slice, reflect.Func:
		return va.Pointer() == vb.Pointer()
	}
	return false
}
