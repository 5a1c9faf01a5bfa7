package binfmt

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestReadConf(t *testing.T) {
	in := "# comment\n; another\n\n   :a:E::x::/p:   \n\t:b:M::ab::/q:F\n"
	rules, err := ReadConf(strings.NewReader(in), "t.conf")
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 2 || rules[0].Name != "a" || rules[1].Name != "b" {
		t.Fatalf("rules = %v", rules)
	}
	_, err = ReadConf(strings.NewReader("\n:a:E::x::/p:\n:bad:X::x::/p:\n"), "t.conf")
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Source != "t.conf:3" || !errors.Is(err, unix.EINVAL) {
		t.Fatalf("bad line: %v, want t.conf:3 EINVAL", err)
	}
}

// systemd-binfmt: a name in a higher directory hides the same name below,
// /dev/null masks it, files apply in name order across directories, and
// the rule applied last is tried first.
func TestLoadConfPrecedence(t *testing.T) {
	root := t.TempDir()
	etc, usr := filepath.Join(root, "etc"), filepath.Join(root, "usr")
	write := func(dir, name, body string) {
		os.MkdirAll(dir, 0o755)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(usr, "a.conf", ":from-usr-a:E::a::/p:\n")
	write(etc, "a.conf", ":from-etc-a:E::a::/p:\n")
	write(usr, "b.conf", ":b:E::b::/p:\n")
	write(usr, "c.conf", ":c:E::c::/p:\n")
	write(usr, "notes.txt", ":n:E::n::/p:\n")
	if err := os.Symlink("/dev/null", filepath.Join(etc, "c.conf")); err != nil {
		t.Fatal(err)
	}
	write(etc, "d.conf", ":b:E::d::/p:\n") // same rule name as b.conf: replaces it
	files, err := ConfFiles(etc, filepath.Join(root, "missing"), usr)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(etc, "a.conf"), filepath.Join(usr, "b.conf"), filepath.Join(etc, "d.conf")}
	if !slices.Equal(files, want) {
		t.Fatalf("ConfFiles = %v, want %v", files, want)
	}
	rules, err := LoadConf(etc, usr)
	if err != nil {
		t.Fatal(err)
	}
	m := &Misc{}
	if err := m.Apply(rules); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range m.Rules() {
		got = append(got, r.Name+"."+r.Ext)
	}
	if w := []string{"b.d", "from-etc-a.a"}; !slices.Equal(got, w) {
		t.Fatalf("rules newest first = %v, want %v", got, w)
	}
}

func TestRegister(t *testing.T) {
	m := &Misc{}
	parse := func(s string) *Rule {
		r, err := Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if err := m.Register(parse(":a:E::x::/p:")); err != nil {
		t.Fatal(err)
	}
	if err := m.Register(parse(":a:E::y::/p:")); !errors.Is(err, unix.EEXIST) {
		t.Errorf("same name again: %v, want EEXIST", err)
	}
	dir := t.TempDir()
	if err := m.Register(parse(":f:E::x::" + dir + "/missing:F")); !errors.Is(err, unix.ENOENT) {
		t.Errorf("F with a missing interpreter: %v, want ENOENT", err)
	}
	noexec := filepath.Join(dir, "noexec")
	os.WriteFile(noexec, []byte("x"), 0o644)
	if os.Geteuid() != 0 {
		if err := m.Register(parse(":g:E::x::" + noexec + ":F")); !errors.Is(err, unix.EACCES) {
			t.Errorf("F with an interpreter without execute permission: %v, want EACCES", err)
		}
	}
	if err := m.Register(parse(":h:E::x::" + dir + ":F")); !errors.Is(err, unix.EACCES) {
		t.Errorf("F with a directory: %v, want EACCES", err)
	}
	// bm_register_write's order: the F interpreter is opened before the
	// name is looked up.
	if err := m.Register(parse(":a:E::x::" + dir + "/missing:F")); !errors.Is(err, unix.ENOENT) {
		t.Errorf("F with a missing interpreter, a name taken: %v, want ENOENT", err)
	}
	if err := m.Register(parse(":" + strings.Repeat("n", 256) + ":E::x::/p:")); !errors.Is(err, unix.ENAMETOOLONG) {
		t.Errorf("a name of 256 bytes: %v, want ENAMETOOLONG", err)
	}
	if err := m.Register(parse(":" + strings.Repeat("n", 255) + ":E::x::/p:")); err != nil {
		t.Errorf("a name of 255 bytes: %v", err)
	}
	busy := filepath.Join(dir, "busy")
	os.WriteFile(busy, []byte("#!/bin/sh\n"), 0o755)
	w, err := os.OpenFile(busy, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Register(parse(":b:E::x::" + busy + ":F")); !errors.Is(err, unix.ETXTBSY) {
		t.Errorf("F with an interpreter open for writing: %v, want ETXTBSY", err)
	}
	w.Close()
	if err := m.Register(parse(":b:E::x::" + busy + ":F")); err != nil {
		t.Errorf("F with that interpreter closed again: %v", err)
	}
	if err := m.Register(parse(":t:E::x::/bin/true:F")); err != nil {
		t.Errorf("F with /bin/true: %v", err)
	}
	if err := m.Unregister("t"); err != nil {
		t.Error(err)
	}
	if err := m.Unregister("t"); !errors.Is(err, unix.ENOENT) {
		t.Errorf("unregister twice: %v, want ENOENT", err)
	}
}

// TestRegisterOwnFileNames: a rule may not be named after binfmt_misc's own
// files, status and register: the kernel finds the name taken (EEXIST).
func TestRegisterOwnFileNames(t *testing.T) {
	for _, name := range []string{"status", "register"} {
		r, err := Parse(":" + name + ":M::ab::/bin/sh:")
		if err != nil {
			t.Fatal(err)
		}
		if err := new(Misc).Register(r); !errors.Is(err, unix.EEXIST) {
			t.Errorf("a rule named %s: %v, want EEXIST", name, err)
		}
	}
}

// TestReadConfLongLines: a line past the scanner's 1 MiB is EINVAL naming
// FILE:LINE, and an error quotes a long rule only in part.
func TestReadConfLongLines(t *testing.T) {
	_, err := ReadConf(strings.NewReader("# x\n:"+strings.Repeat("a", 2<<20)+"\n"), "big.conf")
	if !errors.Is(err, unix.EINVAL) || !strings.Contains(err.Error(), "big.conf:2: a line longer than 1 MiB") {
		t.Errorf("a 2 MiB line: %v", err)
	}
	_, err = ReadConf(strings.NewReader(":x:M::"+strings.Repeat("a", 70000)+"::/bin/sh:\n"), "long.conf")
	if err == nil || len(err.Error()) > 400 || !strings.Contains(err.Error(), "long.conf:1") {
		t.Errorf("a 70 kB rule: %d bytes of error: %.200v", len(err.Error()), err)
	}
}
