//go:build linux && amd64

package tracee

import "golang.org/x/sys/unix"

// setSyscallRegs prepares r to execute the syscall instruction at site:
// orig_rax -1 so that the kernel does not take the stop for an interrupted
// call to restart, the number in rax, arguments in rdi, rsi, rdx, r10, r8,
// r9 (the x86-64 syscall ABI).
func setSyscallRegs(r *unix.PtraceRegs, site, nr uint64, a [6]uint64) {
	r.Rip = site
	r.Orig_rax = ^uint64(0)
	r.Rax = nr
	r.Rdi, r.Rsi, r.Rdx, r.R10, r.R8, r.R9 = a[0], a[1], a[2], a[3], a[4], a[5]
}

func syscallResult(r *unix.PtraceRegs) uint64 { return r.Rax }

// EntryRegs returns the registers a fresh x86-64 image starts with (Linux
// start_thread): all general registers 0, rip and rsp as given, rflags
// 0x202 (IF and the reserved bit 1), user code and stack selectors, no
// fs or gs base.
func EntryRegs(rip, rsp uint64) unix.PtraceRegs {
	return unix.PtraceRegs{
		Rip:      rip,
		Rsp:      rsp,
		Eflags:   0x202,
		Cs:       0x33, // __USER_CS
		Ss:       0x2b, // __USER_DS
		Orig_rax: ^uint64(0),
	}
}
