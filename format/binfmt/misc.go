package binfmt

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/execsw"
)

// Misc is binfmt_misc: one exec switch entry holding a list of rules,
// tried newest first. Add it to a switch with execsw.PrioFirst, so that it
// comes before #! and ELF as the kernel's misc_format does (insert_binfmt).
// The zero value has no rules. It is safe for concurrent use.
type Misc struct {
	mu    sync.RWMutex
	rules []*entry // oldest first: the newest is tried first
	names map[string]bool
}

type entry struct {
	*Rule
	file *os.File // the interpreter, opened at registration (F)
}

var _ execsw.Format = (*Misc)(nil)

// Register adds r as the newest rule, in bm_register_write's order: with
// FixBinary the interpreter is opened first, with this process's
// credentials, and its open errors (ENOENT, EACCES, ETXTBSY) refuse the
// rule; then the name is looked up in binfmt_misc's directory:
// ENAMETOOLONG beyond 255 bytes, EEXIST when a rule of that name is
// registered (or the name is "status" or "register").
func (m *Misc) Register(r *Rule) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := &entry{Rule: r}
	if r.Flags&FixBinary != 0 {
		f, err := openInterp(r.Interpreter)
		if err != nil {
			return &ParseError{Rule: r.Text, Reason: "opening the interpreter " + r.Interpreter, Err: err}
		}
		e.file = f
	}
	refuse := func(errno unix.Errno, format string, args ...any) error {
		if e.file != nil {
			e.file.Close()
		}
		return &ParseError{Rule: r.Text, Reason: fmt.Sprintf(format, args...), Err: errno}
	}
	switch {
	case len(r.Name) > nameMax:
		return refuse(unix.ENAMETOOLONG, "name of %d bytes", len(r.Name))
	case r.Name == "status" || r.Name == "register":
		// binfmt_misc's own files: the kernel finds the name taken.
		return refuse(unix.EEXIST, "%q is binfmt_misc's own file", r.Name)
	case m.names[r.Name]:
		return refuse(unix.EEXIST, "a rule named %q is registered", r.Name)
	}
	// Appended, not put first: tens of thousands of rules (a binfmt.d
	// of them) registered in linear time.
	m.rules = append(m.rules, e)
	if m.names == nil {
		m.names = map[string]bool{}
	}
	m.names[r.Name] = true
	return nil
}

// Unregister removes the rule named name (writing -1 to its entry):
// ENOENT when there is none.
func (m *Misc) Unregister(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.names[name] {
		return fmt.Errorf("binfmt rule %q: %w", name, unix.ENOENT)
	}
	for i, e := range m.rules {
		if e.Name == name {
			if e.file != nil {
				e.file.Close()
			}
			m.rules = append(m.rules[:i:i], m.rules[i+1:]...)
			delete(m.names, name)
			return nil
		}
	}
	return fmt.Errorf("binfmt rule %q: %w", name, unix.ENOENT)
}

// Rules returns the registered rules, newest first.
func (m *Misc) Rules() []*Rule {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]*Rule, len(m.rules))
	for i, e := range m.rules {
		out[len(m.rules)-1-i] = e.Rule
	}
	return out
}

// openInterp opens an F interpreter as open_exec does at registration:
// a regular file this process may execute, on a mount that allows it.
func openInterp(path string) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		if err == unix.EACCES {
			// Not readable by us: the kernel's exec open needs no read
			// permission, but uexec reads what it maps.
			return nil, err
		}
		return nil, err
	}
	f := os.NewFile(uintptr(fd), path)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		f.Close()
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		f.Close()
		return nil, unix.EACCES
	}
	// faccessat with the effective ids: the permission check open_exec
	// makes (MAY_EXEC), and the noexec mount check.
	if err := unix.Faccessat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), unix.X_OK, unix.AT_EACCESS); err != nil {
		f.Close()
		return nil, unix.EACCES
	}
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err == nil && sfs.Flags&unix.ST_NOEXEC != 0 {
		f.Close()
		return nil, unix.EACCES
	}
	// deny_write_access: a file open for writing is ETXTBSY.
	if errno := execsw.TextBusy(fd); errno != 0 {
		f.Close()
		return nil, errno
	}
	return f, nil
}

// Name returns "binfmt".
func (m *Misc) Name() string { return "binfmt" }

// HeaderSize returns BufSize, the bytes magic is matched in.
func (m *Misc) HeaderSize() int { return BufSize }

// Native reports whether m holds no rule: then it plans nothing the
// kernel's own exec would not (it answers ENOEXEC to every file).
func (m *Misc) Native() bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.rules) == 0
}

// MakeCmds matches epp against the rules, newest first, and rewrites the
// exec to run the first matching rule's interpreter (load_misc_binary):
//
//   - ENOEXEC when no rule matches: the next handler tries;
//   - ENOENT for a file reached through an O_CLOEXEC descriptor, whose
//     /dev/fd name the interpreter could not open;
//   - argv becomes [interpreter, name, argv[1:]...], or with P
//     [interpreter, name, argv[0], argv[1:]...], where name is the path
//     as passed (bprm->interp), and E2BIG when that does not fit;
//   - with O the file goes to the interpreter as AT_EXECFD, with C its
//     set-id bits count instead of the interpreter's;
//   - then the interpreter's own errors: ENOENT, EACCES, ELOOP beyond
//     five nested interpreters, ENOEXEC for a further rewrite after O.
func (m *Misc) MakeCmds(epp *execsw.Package) error {
	e := m.match(epp)
	if e == nil {
		return errNoMatch
	}
	epp.Flags |= execsw.FlagDestr
	if epp.Req.File != nil && epp.Req.CloseOnExec {
		// BINPRM_FLAGS_PATH_INACCESSIBLE.
		return &execsw.ExecError{Path: epp.Path, Reason: fmt.Sprintf("binfmt rule %s: the file was reached through a close-on-exec descriptor", e.Name), Err: unix.ENOENT}
	}
	if epp.Args == nil {
		return &execsw.ExecError{Path: epp.Path, Reason: "no arguments collected", Err: unix.EINVAL}
	}
	if e.Flags&PreserveArgv0 != 0 {
		epp.Flags |= execsw.FlagPreserveArgv0
	} else {
		epp.Args.RemoveArgZero()
	}
	if err := epp.Args.Push("file name", epp.InterpName()); err != nil {
		return &execsw.ExecError{Path: epp.Path, Reason: "binfmt rule " + e.Name, Err: err}
	}
	if err := epp.Args.Push("interpreter name", e.Interpreter); err != nil {
		return &execsw.ExecError{Path: epp.Path, Reason: "binfmt rule " + e.Name, Err: err}
	}
	epp.Chain = append(epp.Chain, execsw.Link{Format: "binfmt", Name: e.Name, Path: epp.Path})
	if epp.Extended == "" {
		epp.Extended = "binfmt rule " + e.Name
	}
	epp.Flags |= execsw.FlagIndir
	epp.Depth++
	if e.Flags&OpenBinary != 0 {
		if err := epp.PassExecutable(e.Flags&Credentials != 0); err != nil {
			return err
		}
	}
	epp.Path = e.Interpreter
	if e.file != nil {
		epp.RunFile(e.file)
	}
	// Cleared so that the interpreter's own handlers each get their try;
	// set again below, as the exec is this handler's whatever follows.
	epp.Flags &^= execsw.FlagDestr
	err := epp.Sw.CheckExec(epp)
	epp.Flags |= execsw.FlagDestr
	return err
}

var errNoMatch = fmt.Errorf("no binfmt rule matches: %w", unix.ENOEXEC)

func (m *Misc) match(epp *execsw.Package) *entry {
	m.mu.RLock()
	defer m.mu.RUnlock()
	hdr := epp.Hdr
	if epp.HdrValid >= 0 && epp.HdrValid < len(hdr) {
		hdr = hdr[:epp.HdrValid]
	}
	for _, e := range slices.Backward(m.rules) {
		if e.matches(hdr, epp.Path) {
			return e
		}
	}
	return nil
}
