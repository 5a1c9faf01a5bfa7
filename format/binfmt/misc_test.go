package binfmt_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec"
	"github.com/uexec/uexec/execsw"
	"github.com/uexec/uexec/format/binfmt"
	"github.com/uexec/uexec/internal/testenv"
	"github.com/uexec/uexec/stack"
)

// planWith plans an exec of path with argv under rules (newest last), as
// an unprivileged caller whose ids are those of this process.
func planWith(t *testing.T, rules []string, path string, argv ...string) (*execsw.Plan, error) {
	t.Helper()
	sw := uexec.NewSwitch()
	m := &binfmt.Misc{}
	for _, s := range rules {
		r, err := binfmt.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Register(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := sw.Add(m, execsw.PrioFirst); err != nil {
		t.Fatal(err)
	}
	req, err := uexec.SelfRequest(path, argv, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := sw.Execve(req)
	if err == nil {
		t.Cleanup(func() { p.Close() })
	}
	return p, err
}

func aux(p *execsw.Plan, typ stack.AuxType) (uint64, bool) {
	for _, a := range p.Stack.Auxv {
		if a.Type == typ {
			return a.Value, true
		}
	}
	return 0, false
}

func TestMiscRewrites(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "t.rsx")
	os.WriteFile(target, []byte("payload"), 0o755)
	interp := "/bin/true"
	for _, tc := range []struct {
		flags    string
		argv     []string
		execfd   bool
		preserve bool
	}{
		{"", []string{interp, target, "x", "y"}, false, false},
		{"F", []string{interp, target, "x", "y"}, false, false},
		{"P", []string{interp, target, "ARGV0", "x", "y"}, false, true},
		{"O", []string{interp, target, "x", "y"}, true, false},
		{"C", []string{interp, target, "x", "y"}, true, false},
		{"POCF", []string{interp, target, "ARGV0", "x", "y"}, true, true},
	} {
		t.Run("flags "+tc.flags, func(t *testing.T) {
			p, err := planWith(t, []string{":rsx:E::rsx::" + interp + ":" + tc.flags}, target, "ARGV0", "x", "y")
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(p.Image.Args.Argv, tc.argv) {
				t.Errorf("argv %q, want %q", p.Image.Args.Argv, tc.argv)
			}
			if p.Image.Args.ExecFn != target {
				t.Errorf("AT_EXECFN %q, want %q", p.Image.Args.ExecFn, target)
			}
			if p.Comm != "t.rsx" {
				t.Errorf("comm %q, want t.rsx", p.Comm)
			}
			if _, ok := aux(p, stack.AT_EXECFD); ok != tc.execfd || (p.ExecFD != nil) != tc.execfd {
				t.Errorf("AT_EXECFD present %v (file %v), want %v", ok, p.ExecFD, tc.execfd)
			}
			if f, _ := aux(p, stack.AT_FLAGS); (f == 1) != tc.preserve {
				t.Errorf("AT_FLAGS %d, want preserve-argv0 %v", f, tc.preserve)
			}
			if len(p.Chain) < 2 || p.Chain[0] != (execsw.Link{Format: "binfmt", Name: "rsx", Path: target}) || p.Chain[1].Path != interp {
				t.Errorf("chain %+v", p.Chain)
			}
			if p.Extended == "" {
				t.Error("a plan through a rule of uexec's is not marked extended")
			}
		})
	}
}

func TestMiscErrors(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "t.rsx")
	os.WriteFile(target, []byte("payload"), 0o755)
	script := filepath.Join(dir, "s.sh")
	os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755)
	noexec := filepath.Join(dir, "noexec")
	os.WriteFile(noexec, []byte("\x7fELF"), 0o644)
	self := filepath.Join(dir, "self.rsx")
	os.WriteFile(self, []byte("x"), 0o755)
	for _, tc := range []struct {
		name  string
		rules []string
		path  string
		want  unix.Errno
	}{
		{"missing interpreter", []string{":r:E::rsx::" + dir + "/missing:"}, target, unix.ENOENT},
		{"unexecutable interpreter", []string{":r:E::rsx::" + noexec + ":"}, target, unix.EACCES},
		{"rule matches its own interpreter", []string{":r:E::rsx::" + self + ":"}, target, unix.ELOOP},
		{"rewrite after O", []string{":r:E::rsx::" + script + ":O"}, target, unix.ENOEXEC},
		{"rewrite without O", []string{":r:E::rsx::" + script + ":"}, target, 0},
		{"no rule matches", []string{":r:E::zzz::/bin/true:"}, target, unix.ENOEXEC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := planWith(t, tc.rules, tc.path, "a")
			if tc.want == 0 {
				if err != nil {
					t.Fatalf("got %v, want success", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// The kernel allows 5 rewrites and refuses a sixth with ELOOP: a chain of
// rules a.1 -> a.2 -> ... whose last interpreter is a real program.
func TestMiscDepth(t *testing.T) {
	dir := t.TempDir()
	rules := func(n int) []string {
		var rs []string
		for i := 1; i <= n; i++ {
			p := filepath.Join(dir, "f."+string(rune('a'+i)))
			os.WriteFile(p, []byte("x"), 0o755)
			next := filepath.Join(dir, "f."+string(rune('a'+i+1)))
			if i == n {
				next = "/bin/true"
			}
			rs = append(rs, ":r"+string(rune('a'+i))+":E::"+string(rune('a'+i))+"::"+next+":")
		}
		return rs
	}
	if _, err := planWith(t, rules(5), filepath.Join(dir, "f.b")); err != nil {
		t.Errorf("5 rewrites: %v", err)
	}
	if _, err := planWith(t, rules(6), filepath.Join(dir, "f.b")); !errors.Is(err, unix.ELOOP) {
		t.Errorf("6 rewrites: %v, want ELOOP", err)
	}
}

// With C, the set-id bits of the file count, not the interpreter's.
func TestMiscCredentials(t *testing.T) {
	testenv.NeedRoot(t) // a set-uid file owned by another user
	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0o755)
	os.Chmod(dir, 0o755)
	target := filepath.Join(dir, "t.rsx")
	os.WriteFile(target, []byte("x"), 0o755)
	os.Chown(target, 65533, 65533)
	if err := unix.Chmod(target, 0o4755); err != nil {
		t.Fatal(err)
	}
	for _, flags := range []string{"", "O", "C"} {
		sw := uexec.NewSwitch()
		m := &binfmt.Misc{}
		r, _ := binfmt.Parse(":r:E::rsx::/bin/true:" + flags)
		m.Register(r)
		sw.Add(m, execsw.PrioFirst)
		req, _ := uexec.SelfRequest(target, []string{"t"}, nil)
		req.Cred = execsw.Cred{UID: 65534, EUID: 65534, SUID: 65534, FSUID: 65534, GID: 65534, EGID: 65534, SGID: 65534, FSGID: 65534}
		req.Downgrade = false
		p, err := sw.Execve(req)
		if err != nil {
			t.Fatalf("flags %q: %v", flags, err)
		}
		want := uint32(65534)
		if flags == "C" {
			want = 65533
		}
		if p.Cred.EUID != want || p.Cred.Secure != (flags == "C") {
			t.Errorf("flags %q: euid %d secure %v, want %d %v", flags, p.Cred.EUID, p.Cred.Secure, want, flags == "C")
		}
		p.Close()
	}
}
