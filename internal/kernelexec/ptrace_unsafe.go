//go:build linux && amd64

package kernelexec

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// getFPRegs is ptrace(PTRACE_GETFPREGS), which x/sys/unix lacks.
func getFPRegs(pid int, fp *FPRegs) error {
	_, _, e := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_GETFPREGS, uintptr(pid), 0, uintptr(unsafe.Pointer(fp)), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// getRegs is ptrace(PTRACE_GETREGS): the tracer's (64-bit) view of the
// registers of any tracee. x/sys/unix's PtraceGetRegs uses
// PTRACE_GETREGSET, which gives a 32-bit tracee's registers in the 32-bit
// layout (user_regs_struct32) instead.
func getRegs(pid int, r *unix.PtraceRegs) error {
	_, _, e := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_GETREGS, uintptr(pid), 0, uintptr(unsafe.Pointer(r)), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// ptraceRseqConfiguration is struct ptrace_rseq_configuration.
type ptraceRseqConfiguration struct {
	RseqAbiPointer uint64
	RseqAbiSize    uint32
	Signature      uint32
	Flags          uint32
	Pad            uint32
}

// getRseq is ptrace(PTRACE_GET_RSEQ_CONFIGURATION) (Linux 5.13).
func getRseq(pid int, r *Rseq) error {
	var c ptraceRseqConfiguration
	_, _, e := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_GET_RSEQ_CONFIGURATION, uintptr(pid),
		unsafe.Sizeof(c), uintptr(unsafe.Pointer(&c)), 0, 0)
	if e != 0 {
		return e
	}
	*r = Rseq{Addr: c.RseqAbiPointer, Size: c.RseqAbiSize, Signature: c.Signature, Flags: c.Flags}
	return nil
}

var _ = [1]struct{}{}[unsafe.Sizeof(FPRegs{})-512] // FPRegs is the 512-byte FXSAVE area
