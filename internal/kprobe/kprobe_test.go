package kprobe

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestExecCheck(t *testing.T) {
	dir := t.TempDir()
	prog := filepath.Join(dir, "prog")
	data, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Skip(err)
	}
	if err := os.WriteFile(prog, data, 0o755); err != nil {
		t.Fatal(err)
	}
	noexec := filepath.Join(dir, "noexec")
	if err := os.WriteFile(noexec, data, 0o644); err != nil {
		t.Fatal(err)
	}
	open := func(p string) int {
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		return fd
	}
	if got := ExecCheck(open(prog)); got != 0 {
		t.Errorf("executable file: got %v, want 0", got)
	}
	if got := ExecCheck(open(noexec)); got != unix.EACCES {
		t.Errorf("mode 0644: got %v, want EACCES", got)
	}
	w, err := os.OpenFile(prog, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := ExecCheck(open(prog)); got != unix.ETXTBSY {
		t.Errorf("file open for writing: got %v, want ETXTBSY", got)
	}
	w.Close()
	if got := ExecCheck(open(prog)); got != 0 {
		t.Errorf("after the writer closed: got %v, want 0", got)
	}
}
