package kprobe

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestExec: the kernel's answer to an exec, with nothing of the new image
// run: 0 for programs and scripts that load, the errno of those that do
// not (a file without #! or ELF header, a missing interpreter, a
// directory), and a script that would leave a file behind leaves none.
func TestExec(t *testing.T) {
	dir := t.TempDir()
	mark := filepath.Join(dir, "ran")
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct {
		path string
		want unix.Errno
	}{
		{"/bin/true", 0},
		{write("touch.sh", "#!/bin/sh\ntouch "+mark+"\n"), 0},
		{write("noshebang", "touch "+mark+"\n"), unix.ENOEXEC},
		{write("missing.sh", "#!/nonexistent/sh\n"), unix.ENOENT},
		{write("bad.elf", "\x7fELF\x02\x01\x01"), unix.ENOEXEC},
		{dir, unix.EACCES},
		{filepath.Join(dir, "nope"), unix.ENOENT},
	} {
		errno, ok := Exec(c.path, []string{c.path}, []string{}, dir)
		if !ok || errno != c.want {
			t.Errorf("%s: errno %v ok %v, want %v", c.path, errno, ok, c.want)
		}
	}
	if _, err := os.Stat(mark); err == nil {
		t.Error("a script the kernel was asked about ran")
	}
	// No child is left: each was reaped.
	if _, err := unix.Wait4(-1, nil, unix.WNOHANG|unix.WALL, nil); err != unix.ECHILD {
		t.Errorf("a child is left behind: wait4: %v", err)
	}
}
