//go:build linux && amd64

#include "textflag.h"

// func vforkRun(x *vforkArgs) (pid uintptr)
//
// Blocks every signal of this thread, clones a child that shares this
// process's memory (CLONE_VM, without CLONE_VFORK: this thread goes on at
// once, and is not put to sleep until the child's exec and woken again),
// and restores the mask. The child runs x's system calls in order, the
// last an execve; the first that fails stores its index and errno in x and
// the child exits with 127. The child keeps this thread's stack pointer but
// never reads or writes the stack (no call, no push, no frame: this thread
// goes on using it), only x and what its ops point to, and runs with every
// signal blocked, so no handler of this process runs in it; the exec
// resets the handlers, and the stub sets the program's mask.
//
// vforkArgs: ops (0), nops (8), the mask to block (16), the saved mask
// (24), the failed op's index (32), its errno (40). An op is 8 words: the
// system call's number, its 6 arguments, and whether its failure is
// ignored.
TEXT ·vforkRun(SB),NOSPLIT|NOFRAME,$0-16
	MOVQ	x+0(FP), R12
	MOVQ	$14, AX		// rt_sigprocmask(SIG_SETMASK, &x.block, &x.saved, 8)
	MOVQ	$2, DI
	LEAQ	16(R12), SI
	LEAQ	24(R12), DX
	MOVQ	$8, R10
	SYSCALL
	MOVQ	$56, AX		// clone(CLONE_VM|SIGCHLD, 0, 0, 0, 0)
	MOVQ	$0x111, DI
	XORQ	SI, SI
	XORQ	DX, DX
	XORQ	R10, R10
	XORQ	R8, R8
	XORQ	R9, R9
	SYSCALL
	CMPQ	AX, $0
	JEQ	child
	MOVQ	AX, R13
	MOVQ	$14, AX		// rt_sigprocmask(SIG_SETMASK, &x.saved, nil, 8)
	MOVQ	$2, DI
	LEAQ	24(R12), SI
	XORQ	DX, DX
	MOVQ	$8, R10
	SYSCALL
	MOVQ	R13, pid+8(FP)
	RET
child:
	MOVQ	0(R12), R13	// the ops
	XORQ	BX, BX		// the op's index
loop:
	CMPQ	BX, 8(R12)
	JAE	exit
	MOVQ	BX, CX
	SHLQ	$6, CX
	ADDQ	R13, CX
	MOVQ	0(CX), AX
	MOVQ	8(CX), DI
	MOVQ	16(CX), SI
	MOVQ	24(CX), DX
	MOVQ	32(CX), R10
	MOVQ	40(CX), R8
	MOVQ	48(CX), R9
	SYSCALL
	CMPQ	AX, $0xfffffffffffff001
	JCS	next
	MOVQ	BX, CX
	SHLQ	$6, CX
	ADDQ	R13, CX
	CMPQ	56(CX), $0
	JEQ	failed
next:
	INCQ	BX
	JMP	loop
failed:
	MOVQ	BX, 32(R12)
	NEGQ	AX
	MOVQ	AX, 40(R12)
exit:
	MOVQ	$231, AX	// exit_group(127)
	MOVQ	$127, DI
	SYSCALL
	JMP	exit
