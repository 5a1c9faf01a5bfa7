package execsw

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// The probe's program is a valid ELF32 program and its answer is the
// kernel's: exec'd from a file, it exits 0 exactly where ia32Once says
// the kernel runs ELF32, and fails with ENOEXEC where it says not.
func TestIA32Probe(t *testing.T) {
	p := filepath.Join(t.TempDir(), "exit32")
	if err := os.WriteFile(p, exit32, 0o755); err != nil {
		t.Fatal(err)
	}
	err := exec.Command(p).Run()
	switch got := ia32Once(); {
	case got && err != nil:
		t.Errorf("probe says IA-32 runs, the file: %v", err)
	case !got && !errors.Is(err, syscall.ENOEXEC):
		t.Errorf("probe says no IA-32, the file: %v (want ENOEXEC)", err)
	}
}
