// Package planstub holds the plan stub: a freestanding x86-64 program
// (csrc/stub.c, built by csrc/build.sh into stub.elf, listed in stub.lst) that
// executes a plan in package internal/wire's format in its own process and
// jumps to the program it built, without a tracer. See csrc/stub.c for its
// steps.
//
// The stub is started with argv {anything, PLAN}, where PLAN is the
// descriptor of its plan (a pipe holding all of it, its writing end
// closed, or a sealed memfd) or a path the stub opens (a tracer's
// /proc/PID/fd/N); or, a copy of it with the plan at PlanOffset,
// exec'd by descriptor (AT_EXECFN /dev/fd/N) with any argv. The kernel's
// exec of the stub is the point of no return of the exec it carries out.
package planstub

import (
	_ "embed"
)

//go:generate csrc/build.sh

//go:embed stub.elf
var stubELF []byte

// ELF returns the stub's executable.
func ELF() []byte { return stubELF }

// The stub's address space (layout.h).
const (
	ReservedStart = 0x100_0000_0000
	ReservedEnd   = 0x100_4000_0000
	Base          = 0x100_0000_1000
	RunAddr       = 0x100_1000_0000
	PlanAddr      = 0x100_2000_0000
	// PlanOffset is where a plan appended to a copy of the stub starts,
	// for a stub exec'd by descriptor (AT_EXECFN /dev/fd/N).
	PlanOffset = 0x4000
	// PipePlanMax is the largest plan the stub reads from a pipe (a
	// pipe's default capacity), in PipePlanMax bytes of memory.
	PipePlanMax = 0x10000
)
