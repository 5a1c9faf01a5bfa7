package execsw

import (
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/uexec/uexec/stack"
)

// The probe's program is a valid ELF32 program and its answer is the
// kernel's: exec'd from a file, it runs exactly where ia32Once says the
// kernel runs ELF32 and writes where __kernel_vsyscall is in its vdso (a
// place inside the vdso), and fails with ENOEXEC where it says not.
// (TestDiffFuzzRegressions compares the AT_SYSINFO it gives with the
// kernel's.)
func TestIA32Probe(t *testing.T) {
	p := filepath.Join(t.TempDir(), "probe32")
	if err := os.WriteFile(p, probe32, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(p).Output()
	switch got := ia32Once(); {
	case got.runs && err != nil:
		t.Errorf("probe says IA-32 runs, the file: %v", err)
	case got.runs:
		h, herr := stack.HostFromProc()
		if herr != nil {
			t.Fatal(herr)
		}
		if len(out) != 4 || uint64(binary.LittleEndian.Uint32(out)) != got.vsyscall || got.vsyscall == 0 || got.vsyscall >= h.VDSOLen {
			t.Errorf("probe wrote %x, ia32Once says __kernel_vsyscall at %#x: want the same place inside the vdso (%#x bytes)", out, got.vsyscall, h.VDSOLen)
		}
	case !errors.Is(err, syscall.ENOEXEC):
		t.Errorf("probe says no IA-32, the file: %v (want ENOEXEC)", err)
	}
}
