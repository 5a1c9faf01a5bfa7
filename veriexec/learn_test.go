package veriexec

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestLearnerWritesOnlyFiles: the learner replaces a signatures file (or
// the target of a link to one) and refuses what is not a regular file: a
// FIFO, a directory, a device node (a rename over /dev/full as root made it
// a file of signatures), each left as it was.
func TestLearnerWritesOnlyFiles(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "sigs")
	if err := NewLearner(file).Write(); err != nil {
		t.Fatalf("a new file: %v", err)
	}
	target := filepath.Join(dir, "target")
	os.WriteFile(target, nil, 0o644)
	link := filepath.Join(dir, "link")
	os.Symlink(target, link)
	if err := NewLearner(link).Write(); err != nil {
		t.Fatalf("a link: %v", err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v %v", fi, err)
	}
	if b, _ := os.ReadFile(target); len(b) == 0 {
		t.Error("the link's target was not written")
	}
	fifo := filepath.Join(dir, "fifo")
	syscall.Mkfifo(fifo, 0o644)
	cases := map[string]error{fifo: syscall.EINVAL, dir: syscall.EISDIR}
	// A copy of /dev/null's node (root only), never the system's own.
	if dev := filepath.Join(dir, "null"); syscall.Mknod(dev, syscall.S_IFCHR|0o666, 1<<8|3) == nil {
		cases[dev] = syscall.EINVAL
	}
	for path, want := range cases {
		before, _ := os.Lstat(path)
		if err := NewLearner(path).Write(); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", path, err, want)
		}
		if after, err := os.Lstat(path); err != nil || after.Mode() != before.Mode() {
			t.Errorf("%s changed: %v %v", path, after, err)
		}
	}
}

// TestLearnerNamesItsFile: a learned table that cannot be written is an
// error naming the file asked for, not the temporary file it is written
// through.
func TestLearnerNamesItsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "sigs")
	err := writeAtomic(path, []byte("x"))
	if !errors.Is(err, syscall.ENOENT) || err.Error() != "write "+path+": no such file or directory" {
		t.Errorf("got %v, want ENOENT naming %s", err, path)
	}
}
