package veriexec

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// Table is a signatures file's entries, by path and, once loaded, by the
// identity (device, inode) of the file each path named at load time.
type Table struct {
	Name string // the file it was read from
	// Warnings are what Load found wrong with the files listed, as
	// veriexecctl load warns of them ("FILE:LINE: ..."): a path that
	// names nothing, or no regular file.
	Warnings []string
	entries  []*Entry
	byPath   map[string]*Entry
	byID     map[fileID]*Entry
}

type fileID struct{ dev, ino uint64 }

func newTable(name string) *Table {
	return &Table{Name: name, byPath: map[string]*Entry{}, byID: map[fileID]*Entry{}}
}

// add adds e; a second entry of a path is refused unless it is the same
// fingerprint (then their flags add up, as a learned file's do).
func (t *Table) add(e *Entry) error {
	if old, ok := t.byPath[e.Path]; ok {
		if old.Type != e.Type || string(old.Fingerprint) != string(e.Fingerprint) {
			return fmt.Errorf("%s: a second entry with another fingerprint (first at line %d)", e.Path, old.Line)
		}
		old.Flags |= e.Flags
		return nil
	}
	t.byPath[e.Path] = e
	t.entries = append(t.entries, e)
	return nil
}

// Load reads the signatures file name and resolves each entry's path to
// the file it names now (symlinks followed, as veriexecctl load's namei
// does): an exec is checked by the name it resolved to, or by the file's
// identity. A path that does not exist stays as written, and so does
// one that names no regular file; each is a warning (veriexecctl load
// warns of them and skips them: here such a path matches once it names a
// file of the listed fingerprint).
func Load(name string) (*Table, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	t, err := Parse(f, name)
	if err != nil {
		return nil, err
	}
	r := newTable(name)
	for _, e := range t.entries {
		if p, err := filepath.EvalSymlinks(e.Path); err == nil {
			e.Path = p
		}
		var st unix.Stat_t
		serr := unix.Stat(e.Path, &st)
		if old, ok := r.byID[fileID{st.Dev, st.Ino}]; ok && serr == nil && old.Path != e.Path {
			// A hard link of a listed file: one file, one entry, as
			// NetBSD keys its table by vnode.
			if old.Type != e.Type || string(old.Fingerprint) != string(e.Fingerprint) {
				return nil, &ParseError{File: name, Line: e.Line, Err: unix.EEXIST,
					Msg: fmt.Sprintf("%s: the file of %s (line %d, a hard link), with another fingerprint", e.Path, old.Path, old.Line)}
			}
			old.Flags |= e.Flags
			r.byPath[e.Path] = old
			continue
		}
		if err := r.add(e); err != nil {
			return nil, &ParseError{File: name, Line: e.Line, Msg: err.Error(), Err: unix.EEXIST}
		}
		switch err := serr; {
		case err != nil:
			var errno unix.Errno
			errors.As(err, &errno)
			r.Warnings = append(r.Warnings, fmt.Sprintf("%s:%d: %s: %v (%s): no file has this entry until the path names one", name, e.Line, e.Path, err, unix.ErrnoName(errno)))
		case st.Mode&unix.S_IFMT != unix.S_IFREG:
			r.Warnings = append(r.Warnings, fmt.Sprintf("%s:%d: %s is not a regular file: nothing exec'd matches the entry", name, e.Line, e.Path))
		default:
			r.byID[fileID{st.Dev, st.Ino}] = r.byPath[e.Path]
		}
	}
	return r, nil
}

// Entries returns the table's entries in file order.
func (t *Table) Entries() []Entry {
	out := make([]Entry, len(t.entries))
	for i, e := range t.entries {
		out[i] = *e
	}
	return out
}

// Len is the number of entries.
func (t *Table) Len() int { return len(t.entries) }

// lookup finds the entry of a file exec'd as the resolved name, or with
// the identity a listed path had at load time (a file exec'd by
// descriptor, or through another name).
func (t *Table) lookup(resolved string, dev, ino uint64) *Entry {
	if e, ok := t.byPath[resolved]; ok {
		return e
	}
	return t.byID[fileID{dev, ino}]
}

// WriteTo writes the table as a signatures file, sorted by path.
func (t *Table) WriteTo(w io.Writer) (int64, error) {
	es := append([]*Entry(nil), t.entries...)
	sort.Slice(es, func(i, j int) bool { return es[i].Path < es[j].Path })
	bw := bufio.NewWriter(w)
	var n int64
	for _, e := range es {
		m, _ := fmt.Fprintf(bw, "%s %s %s %s\n", e.Path, e.Type, hex.EncodeToString(e.Fingerprint), e.Flags)
		n += int64(m)
	}
	return n, bw.Flush()
}

// writable reports whether a path can be written in a signatures file:
// the format has no quoting, so no blanks, and no backslash at the end.
func writable(path string) bool {
	return strings.HasPrefix(path, "/") && !strings.ContainsAny(path, " \t\r\n\v\f") && !strings.HasSuffix(path, "\\")
}
