// Package sys holds the Linux x86-64 system call numbers, constants and raw
// wrappers that golang.org/x/sys/unix lacks.
package sys

import (
	"os"
	"syscall"
	"unsafe"
)

// personality(2) flags (include/uapi/linux/personality.h).
const (
	ADDR_NO_RANDOMIZE  = 0x0040000
	MMAP_PAGE_ZERO     = 0x0100000
	ADDR_COMPAT_LAYOUT = 0x0200000
	READ_IMPLIES_EXEC  = 0x0400000
	// PER_CLEAR_ON_SETID are the flags a set-id exec clears.
	PER_CLEAR_ON_SETID = READ_IMPLIES_EXEC | ADDR_NO_RANDOMIZE | ADDR_COMPAT_LAYOUT | MMAP_PAGE_ZERO
	// PersonalityQuery makes Personality report the current persona
	// without changing it.
	PersonalityQuery = 0xffffffff
)

// arch_prctl(2) codes (arch/x86/include/uapi/asm/prctl.h).
const (
	ARCH_SET_GS       = 0x1001
	ARCH_SET_FS       = 0x1002
	ARCH_MAP_VDSO_X32 = 0x2001
	ARCH_MAP_VDSO_32  = 0x2002
	ARCH_MAP_VDSO_64  = 0x2003
)

// PR_SET_MM_MAP_SIZE asks prctl(PR_SET_MM) for the size of struct
// prctl_mm_map (include/uapi/linux/prctl.h).
const PR_SET_MM_MAP_SIZE = 15

// PrctlMMMapSize is sizeof(struct prctl_mm_map) on x86-64: eleven u64
// addresses, the auxv pointer, and two u32 (auxv_size, exe_fd).
const PrctlMMMapSize = 12*8 + 2*4

// Personality calls personality(2) on the calling thread: the persona is a
// per-thread attribute, inherited by children that thread forks. It returns
// the previous persona.
func Personality(persona uint32) (uint32, error) {
	r, _, e := syscall.RawSyscall(syscall.SYS_PERSONALITY, uintptr(persona), 0, 0)
	if e != 0 {
		return 0, os.NewSyscallError("personality", e)
	}
	return uint32(r), nil
}

// AT_EXECVE_CHECK makes execveat(2) check an exec without making it (Linux
// 6.14, include/uapi/linux/fcntl.h).
const AT_EXECVE_CHECK = 0x10000

const sysExecveat = 322 // x86-64

// ExecCheck asks the kernel whether this process may execute the file at
// path: every check of an exec (mount flags, modes, LSMs such as Landlock),
// no exec (execveat AT_EXECVE_CHECK; ~6 µs here). nil where the kernel does
// not know the flag (EINVAL).
func ExecCheck(path string) error {
	p, err := syscall.BytePtrFromString(path)
	if err != nil {
		return err
	}
	empty := []*byte{nil}
	cwd := -100 // AT_FDCWD
	_, _, e := syscall.Syscall6(sysExecveat, uintptr(cwd), uintptr(unsafe.Pointer(p)),
		uintptr(unsafe.Pointer(&empty[0])), uintptr(unsafe.Pointer(&empty[0])), AT_EXECVE_CHECK, 0)
	if e != 0 && e != syscall.EINVAL {
		return os.NewSyscallError("execveat(AT_EXECVE_CHECK)", e)
	}
	return nil
}

// MDWE reports whether this process runs under memory-deny-write-execute
// (prctl PR_SET_MDWE, systemd's MemoryDenyWriteExecute=): no mapping may be
// writable and executable, nor become executable. It is inherited by
// children and kept across exec.
func MDWE() bool {
	const prGetMDWE = 66
	v, _, e := syscall.Syscall6(syscall.SYS_PRCTL, prGetMDWE, 0, 0, 0, 0, 0)
	return e == 0 && v != 0
}

// SeccompFiltered reports whether this process runs under seccomp filters
// (PR_GET_SECCOMP says SECCOMP_MODE_FILTER), or may not even ask: a
// filter's refusal of prctl counts as one.
func SeccompFiltered() bool {
	const prGetSeccomp, modeFilter = 21, 2
	v, _, e := syscall.Syscall6(syscall.SYS_PRCTL, prGetSeccomp, 0, 0, 0, 0, 0)
	return e != 0 || v == modeFilter
}

// CloseRefused reports whether close(2) fails here with EPERM or EACCES, as
// under a seccomp filter that refuses it: it closes a duplicate of
// descriptor 0 (leaking it when refused), or of a new pipe's end.
func CloseRefused() bool {
	fd, _, e := syscall.Syscall(syscall.SYS_FCNTL, 0, syscall.F_DUPFD_CLOEXEC, 3)
	if e != 0 {
		var p [2]int
		if syscall.Pipe2(p[:], syscall.O_CLOEXEC) != nil {
			return false
		}
		syscall.Close(p[1])
		fd = uintptr(p[0])
	}
	_, _, e = syscall.Syscall(syscall.SYS_CLOSE, fd, 0, 0)
	return e == syscall.EPERM || e == syscall.EACCES
}
