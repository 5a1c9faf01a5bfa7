//go:build linux && amd64

package linux

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// System call numbers the filter notifies besides the x86-64 ones
// (arch/x86/entry/syscalls/syscall_32.tbl and syscall_64.tbl).
const (
	sysExecve32    = 11
	sysExecveat32  = 358
	x32Bit         = 0x40000000 // __X32_SYSCALL_BIT
	sysExecveX32   = 520
	sysExecveatX32 = 545
)

// filterBytes encodes prog as struct sock_filter[] for the stub's
// program.
func filterBytes(prog []unix.SockFilter) []byte {
	var b []byte
	le := binary.LittleEndian
	for _, f := range prog {
		b = le.AppendUint16(b, f.Code)
		b = append(b, f.Jt, f.Jf)
		b = le.AppendUint32(b, f.K)
	}
	return b
}

// notifyMarker in r9 (the sixth argument) lets an execve or execveat
// through the notifying filter: only the supervisor sets it, on the exec of
// the stub it redirects a caller to, so that the stub's exec does not come
// back as a second notification. A program that sets it itself only gets
// the kernel's exec.
const notifyMarker = 0x75657865632d7374

// notifyFilter is the classic BPF program of an untraced tree:
// SECCOMP_RET_USER_NOTIF for execve and execveat in every system call ABI
// (x86-64 without the marker, x32, ia32), SECCOMP_RET_ALLOW for everything
// else. BPF jumps go forward only: the two results are at the end.
func notifyFilter() []unix.SockFilter {
	const (
		ldW    = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq    = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		ret    = unix.BPF_RET | unix.BPF_K
		offNr  = 0
		offArg = 16 + 8*5 // args[5], low word first
	)
	stmt := func(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }
	jump := func(k uint32, jt, jf uint8) unix.SockFilter {
		return unix.SockFilter{Code: jeq, Jt: jt, Jf: jf, K: k}
	}
	return []unix.SockFilter{
		/* 0 */ stmt(ldW, 4), // arch
		/* 1 */ jump(unix.AUDIT_ARCH_X86_64, 0, 11), // -> 13: ia32
		/* 2 */ stmt(ldW, offNr),
		/* 3 */ jump(unix.SYS_EXECVE, 5, 0), // -> 9: the marker
		/* 4 */ jump(unix.SYS_EXECVEAT, 4, 0), // -> 9
		/* 5 */ jump(x32Bit|sysExecveX32, 12, 0), // -> 18
		/* 6 */ jump(x32Bit|sysExecveatX32, 11, 0), // -> 18
		/* 7 */ jump(x32Bit|unix.SYS_EXECVE, 10, 0), // -> 18
		/* 8 */ jump(x32Bit|unix.SYS_EXECVEAT, 9, 8), // -> 18, else 17
		/* 9 */ stmt(ldW, offArg),
		/* 10 */ jump(notifyMarker&0xffffffff, 0, 7), // -> 18
		/* 11 */ stmt(ldW, offArg+4),
		/* 12 */ jump(notifyMarker>>32, 4, 5), // -> 17, else 18
		/* 13 */ jump(unix.AUDIT_ARCH_I386, 0, 3), // -> 17
		/* 14 */ stmt(ldW, offNr),
		/* 15 */ jump(sysExecve32, 2, 0), // -> 18
		/* 16 */ jump(sysExecveat32, 1, 0), // -> 18, else 17
		/* 17 */ stmt(ret, unix.SECCOMP_RET_ALLOW),
		/* 18 */ stmt(ret, unix.SECCOMP_RET_USER_NOTIF),
	}
}
