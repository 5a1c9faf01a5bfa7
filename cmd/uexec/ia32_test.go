package main

import (
	"debug/elf"
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/uexec/uexec/internal/testelf"
)

// exit32 is a static ELF32 program that exits with status 7 (int 0x80).
func exit32() *testelf.File {
	code := []byte{0xb8, 0x01, 0, 0, 0, 0xbb, 0x07, 0, 0, 0, 0xcd, 0x80}
	return &testelf.File{Class: elf.ELFCLASS32, Type: elf.ET_EXEC, Entry: 0x8048100,
		Progs: []testelf.Prog{{Type: elf.PT_LOAD, Flags: elf.PF_R | elf.PF_X, Vaddr: 0x8048000, Filesz: 0x200, Memsz: 0x200, Align: 0x1000}},
		Blobs: []testelf.Blob{{Off: 0x100, Data: code}}}
}

// A 32-bit program runs where the kernel runs it, and fails with ENOEXEC
// where the kernel has no IA-32 emulation, as natively. uexec has no
// 32-bit stub: the kernel's exec of the same request is the plan, so run,
// --once and a tree's exec of it are the kernel's, with its status.
func TestRun32Bit(t *testing.T) {
	needRun(t)
	prog := exit32().Write(t, "exit32")
	err := exec.Command(prog).Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee) && ee.ExitCode() == 7:
		for _, argv := range [][]string{
			{uexecBin, "run", prog},
			{uexecBin, "run", "--once", prog},
			{uexecBin, "run", "/bin/sh", "-c", prog + "; exit $?"},
		} {
			if r := runCmd(t, "", "", argv...); r.status.ExitStatus() != 7 || r.stderr != "" {
				t.Errorf("%v: %v, want status 7 as natively", argv[1:], r)
			}
		}
		// --verbose says why the kernel did it, once: not that
		// /proc/PID/exe needed a capability root has.
		for _, argv := range [][]string{{uexecBin, "run", "--verbose", prog}, {uexecBin, "run", "--once", "--verbose", prog}} {
			r := runCmd(t, "", "", argv...)
			if n := strings.Count(r.stderr, "uexec: note: "); n != 1 || !strings.Contains(r.stderr, "note: a 32-bit image") {
				t.Errorf("%v: %d notes, want one, the 32-bit image's:\n%s", argv[1:], n, r.stderr)
			}
		}
	case errors.Is(err, syscall.ENOEXEC):
		for _, argv := range [][]string{{uexecBin, "plan", prog}, {uexecBin, "run", "--once", prog}} {
			if r := runCmd(t, "", "", argv...); r.status.ExitStatus() != 126 || !strings.Contains(r.stderr, "(ENOEXEC)") {
				t.Errorf("%v: %v, want exit 126 and ENOEXEC as the kernel's", argv[1:], r)
			}
		}
	default:
		t.Fatalf("natively: %v, want status 7 or ENOEXEC", err)
	}
}
