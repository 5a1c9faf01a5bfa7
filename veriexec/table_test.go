package veriexec

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestLoadHardLinks: two paths of one file (a hard link) are one entry, as
// NetBSD keys its table by vnode: the same fingerprint merges their flags
// and either name matches; another fingerprint refuses the table with
// EEXIST naming the line, as a symlink alias does.
func TestLoadHardLinks(t *testing.T) {
	dir, _ := filepath.EvalSymlinks(t.TempDir())
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.WriteFile(a, []byte("x"), 0o755)
	if err := os.Link(a, b); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("x"))
	sigs := filepath.Join(dir, "sigs")
	os.WriteFile(sigs, fmt.Appendf(nil, "%s sha256 %x direct\n%s sha256 %x indirect\n", a, sum, b, sum), 0o644)
	tb, err := Load(sigs)
	if err != nil {
		t.Fatal(err)
	}
	if tb.Len() != 1 {
		t.Errorf("%d entries, want 1: %+v", tb.Len(), tb.Entries())
	}
	for _, name := range []string{a, b} {
		if e := tb.lookup(name, 0, 0); e == nil || e.Flags != Direct|Indirect {
			t.Errorf("lookup %s: %+v, want the one entry, direct and indirect", name, e)
		}
	}
	os.WriteFile(sigs, fmt.Appendf(nil, "%s sha256 %x direct\n%s sha256 %x direct\n", a, sum, b, sha256.Sum256([]byte("y"))), 0o644)
	_, err = Load(sigs)
	var pe *ParseError
	if !errors.Is(err, unix.EEXIST) || !errors.As(err, &pe) || pe.Line != 2 {
		t.Errorf("another fingerprint for a hard link: %v, want EEXIST at line 2", err)
	}
}
