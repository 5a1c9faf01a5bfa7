//go:build linux && amd64

package linux

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/internal/planstub"
)

// TestStubPaths checks that both the memfd and the cached file hold the
// plan stub and are executable.
func TestStubPaths(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	c := &stubCache{elf: planstub.ELF, memfd: -1}
	file, err := c.cachedFile()
	if err != nil {
		t.Fatal(err)
	}
	mem, err := c.makeMemfd()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{mem, file} {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(b, planstub.ELF()) {
			t.Errorf("%s: does not hold the stub (%v)", p, err)
		}
		st, err := os.Stat(p)
		if err != nil || st.Mode()&0o111 == 0 {
			t.Errorf("%s: not executable: %v %v", p, st.Mode(), err)
		}
	}
}

// TestStubCacheChecked: the cached stub and its launcher are used only as
// uexec wrote them: a file there with other bytes, a symbolic link to the
// stub's bytes, or one writable by its group is replaced by the stub's
// own; a cache directory writable by others is not used (the temporary
// directory's is instead).
func TestStubCacheChecked(t *testing.T) {
	stub := planstub.ELF()
	name := func(c *stubCache) string {
		p, err := c.cachedFile()
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	holds := func(p string, want []byte) {
		t.Helper()
		st, err := os.Lstat(p)
		if err != nil || !st.Mode().IsRegular() || st.Mode().Perm()&0o022 != 0 {
			t.Fatalf("%s: %v %v, want a regular file writable by its owner alone", p, st.Mode(), err)
		}
		if b, err := os.ReadFile(p); err != nil || !bytes.Equal(b, want) {
			t.Fatalf("%s: does not hold what uexec wrote (%v)", p, err)
		}
	}
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	path := name(&stubCache{elf: planstub.ELF, memfd: -1}) // where it goes
	elsewhere := filepath.Join(t.TempDir(), "copy")
	if err := os.WriteFile(elsewhere, stub, 0o555); err != nil {
		t.Fatal(err)
	}
	for _, tamper := range []struct {
		name string
		make func(p string) error
	}{
		{"other bytes", func(p string) error { return os.WriteFile(p, []byte("#!/bin/sh\necho replaced\n"), 0o555) }},
		{"a symbolic link to the stub's bytes", func(p string) error { return os.Symlink(elsewhere, p) }},
		{"writable by its group", func(p string) error {
			if err := os.WriteFile(p, stub, 0o555); err != nil {
				return err
			}
			return os.Chmod(p, 0o775)
		}},
	} {
		for _, launcher := range []bool{false, true} {
			c := &stubCache{elf: planstub.ELF, launcher: planstub.Launcher, memfd: -1}
			target, want := path, stub
			if launcher {
				target, want = filepath.Join(filepath.Dir(path), "launch-"), planstub.Launcher(path)
				matches, _ := filepath.Glob(target + "*")
				if len(matches) != 1 {
					t.Fatalf("launchers in the cache: %v", matches)
				}
				target = matches[0]
			}
			os.Chmod(filepath.Dir(target), 0o700)
			os.Remove(target)
			if err := tamper.make(target); err != nil {
				t.Fatal(err)
			}
			got, err := c.filePath()
			if err != nil {
				t.Fatalf("%s: %v", tamper.name, err)
			}
			holds(path, stub)
			if launcher {
				holds(target, want)
			}
			if wantLauncher := filepath.Join(filepath.Dir(path), filepath.Base(got)); got != wantLauncher || !strings.HasPrefix(filepath.Base(got), "launch-") {
				t.Errorf("%s: filePath %s, want the launcher beside %s", tamper.name, got, path)
			}
		}
	}
	// A cache directory others may write to is not used.
	if err := os.Chmod(filepath.Dir(path), 0o777); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	if got := name(&stubCache{elf: planstub.ELF, memfd: -1}); !strings.HasPrefix(got, tmp+"/") {
		t.Errorf("with the cache directory writable by others: %s, want one under %s", got, tmp)
	}
	holds(filepath.Join(tmp, "uexec-"+strconv.Itoa(os.Geteuid()), filepath.Base(path)), stub)
}

// TestStubLauncherRefused: where the kernel refuses to execute the launcher
// (ENOEXEC, as a kernel that loads no ELF without a PT_LOAD would; here a
// launcher with a program header size no kernel accepts), a start runs the
// stub file itself at once, and every later start too: the program runs,
// and --verbose's log says so once.
func TestStubLauncherRefused(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	broken := func(interp string) []byte {
		b := planstub.Launcher(interp)
		b[54], b[55] = 0, 0 // e_phentsize
		return b
	}
	c := &stubCache{elf: planstub.ELF, launcher: broken, memfd: -1, fileFirst: true}
	saved := planStub
	planStub = c
	defer func() { planStub = saved }()
	launcher, err := c.filePath()
	if err != nil || !c.isLauncher(launcher) {
		t.Fatalf("filePath = %q, %v; want the launcher", launcher, err)
	}
	if err := exec.Command(launcher).Run(); !errors.Is(err, unix.ENOEXEC) {
		t.Fatalf("the kernel's exec of the broken launcher: %v, want ENOEXEC", err)
	}
	plan, err := newSwitch(t).Execve(selfRequest(t, "/bin/true", []string{"/bin/true"}, nil, false))
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()
	for i := range 2 {
		var notes []string
		p, err := Start(plan, &Options{Files: []*os.File{nil, nil, nil}, Logf: func(f string, a ...any) {
			if s := fmt.Sprintf(f, a...); strings.Contains(s, "not tried again") {
				notes = append(notes, s)
			}
		}})
		if err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
		st, err := p.Wait()
		if err != nil || !st.Success() {
			t.Fatalf("start %d: the program ended with %v, %v", i, st, err)
		}
		if want := map[int]int{0: 1, 1: 0}[i]; len(notes) != want {
			t.Errorf("start %d: notes %q, want %d", i, notes, want)
		}
		if p, err := c.filePath(); err != nil || c.isLauncher(p) || !strings.Contains(p, "/stub-") {
			t.Errorf("start %d: filePath = %q, %v; want the stub file", i, p, err)
		}
	}
}
