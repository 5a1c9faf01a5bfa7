package main

import (
	"debug/elf"
	"testing"

	"github.com/uexec/uexec/internal/testelf"
	"github.com/uexec/uexec/internal/testenv"
)

// exit32 is a static ELF32 program that exits with status 7 (int 0x80).
func exit32() *testelf.File {
	code := []byte{0xb8, 0x01, 0, 0, 0, 0xbb, 0x07, 0, 0, 0, 0xcd, 0x80}
	return &testelf.File{Class: elf.ELFCLASS32, Type: elf.ET_EXEC, Entry: 0x8048100,
		Progs: []testelf.Prog{{Type: elf.PT_LOAD, Flags: elf.PF_R | elf.PF_X, Vaddr: 0x8048000, Filesz: 0x200, Memsz: 0x200, Align: 0x1000}},
		Blobs: []testelf.Blob{{Off: 0x100, Data: code}}}
}

// A 32-bit program runs where the kernel runs it: uexec has no 32-bit
// stub, and the kernel's exec of the same request is the plan, so run,
// --once and a tree's exec of it are the kernel's, with its status.
func TestRun32Bit(t *testing.T) {
	needRun(t)
	prog := exit32().Write(t, "exit32")
	native := runCmd(t, "", "", prog)
	if native.status.ExitStatus() != 7 {
		testenv.Need(t, false, "the kernel does not run ELF32 programs (IA-32 emulation off): %v", native)
	}
	for _, argv := range [][]string{
		{uexecBin, "run", prog},
		{uexecBin, "run", "--once", prog},
		{uexecBin, "run", "/bin/sh", "-c", prog + "; exit $?"},
	} {
		if r := runCmd(t, "", "", argv...); r.status.ExitStatus() != 7 || r.stderr != "" {
			t.Errorf("%v: %v, want status 7 as natively", argv[1:], r)
		}
	}
}
