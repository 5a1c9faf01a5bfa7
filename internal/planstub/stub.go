// Package planstub holds the plan stub: a freestanding x86-64 program
// (csrc/stub.c, built by csrc/build.sh into stub.elf, listed in stub.lst) that
// executes a plan in package internal/wire's format in its own process and
// jumps to the program it built, without a tracer. See csrc/stub.c for its
// steps.
//
// The stub is started with argv {anything, PLAN}, where PLAN is the
// descriptor of its plan (a pipe holding all of it, its writing end
// closed, or a sealed memfd) or a path the stub opens (a tracer's
// /proc/PID/fd/N), exec'd as the interpreter of its launcher (Launcher)
// or as itself; or, a copy of it with the plan at PlanOffset,
// exec'd by descriptor (AT_EXECFN /dev/fd/N) with any argv. The kernel's
// exec of the stub is the point of no return of the exec it carries out.
package planstub

import (
	_ "embed"
	"encoding/binary"
)

//go:generate csrc/build.sh

//go:embed stub.elf
var stubELF []byte

// ELF returns the stub's executable.
func ELF() []byte { return stubELF }

// Launcher returns the launcher of the stub file at interp (an absolute
// path): an ELF executable with no PT_LOAD, whose PT_INTERP is interp and
// whose PT_GNU_STACK is the stub's (a stack without PROT_EXEC). The
// kernel's exec of it maps only the stub, as its interpreter (AT_ENTRY is
// the launcher's 0, not the stub's _start), so the process's exe is a file
// nothing maps and the stub may set exe_fd from where the kernel mapped
// it, with no copy of itself to make and unmap (csrc/stub.c, step 1).
func Launcher(interp string) []byte {
	const ehsize, phsize, phnum = 64, 56, 2
	le := binary.LittleEndian
	b := make([]byte, ehsize+phnum*phsize, ehsize+phnum*phsize+len(interp)+1)
	copy(b, "\x7fELF\x02\x01\x01") // ELFCLASS64, ELFDATA2LSB, EV_CURRENT
	le.PutUint16(b[16:], 2)        // ET_EXEC
	le.PutUint16(b[18:], 62)       // EM_X86_64
	le.PutUint32(b[20:], 1)        // EV_CURRENT
	le.PutUint64(b[32:], ehsize)   // e_phoff
	le.PutUint16(b[52:], ehsize)
	le.PutUint16(b[54:], phsize)
	le.PutUint16(b[56:], phnum)
	le.PutUint16(b[58:], 64) // e_shentsize, with no section headers
	interpPh := b[ehsize:]
	le.PutUint32(interpPh, 3)     // PT_INTERP
	le.PutUint32(interpPh[4:], 4) // PF_R
	le.PutUint64(interpPh[8:], uint64(len(b)))
	le.PutUint64(interpPh[32:], uint64(len(interp)+1))
	le.PutUint64(interpPh[40:], uint64(len(interp)+1))
	le.PutUint64(interpPh[48:], 1)
	stackPh := b[ehsize+phsize:]
	le.PutUint32(stackPh, 0x6474e551) // PT_GNU_STACK
	le.PutUint32(stackPh[4:], 6)      // PF_R|PF_W
	le.PutUint64(stackPh[48:], 16)
	return append(append(b, interp...), 0)
}

// The stub's address space (layout.h).
const (
	ReservedStart = 0x100_0000_0000
	ReservedEnd   = 0x100_4000_0000
	Base          = 0x100_0000_1000
	RunAddr       = 0x100_1000_0000 // the stub's data and stack (and copy)
	ScratchLen    = 0x3000          // the data page and two pages of stack
	PlanAddr      = 0x100_2000_0000
	// PlanOffset is where a plan appended to a copy of the stub starts,
	// for a stub exec'd by descriptor (AT_EXECFN /dev/fd/N).
	PlanOffset = 0x4000
	// PipePlanMax is the largest plan the stub reads from a pipe (a
	// pipe's default capacity), in PipePlanMax bytes of memory.
	PipePlanMax = 0x10000
)
