// Package kprobe asks the kernel questions that only an exec attempt
// answers: with exec attempts that cannot succeed (ExecCheck), or with one
// made by a traced child that is killed before its new image runs (Exec).
package kprobe

import (
	"strconv"

	"golang.org/x/sys/unix"
)

// badArgv is an argv pointer no process can have mapped (it lies in the
// first page, below mmap_min_addr): the kernel faults reading it.
const badArgv = 1

var empty = [1]byte{0}

// ExecCheck asks the kernel whether the open file fd could be exec'd by
// this process, without exec'ing it: execveat(fd, "", argv, NULL,
// AT_EMPTY_PATH) with an argv the kernel cannot read. Linux opens the file
// and applies its checks (deny_write_access -> ETXTBSY, noexec mount and
// execute permission -> EACCES) before it reads argv (fs/exec.c
// do_execveat_common: alloc_bprm, then count), so the exec fails with
// EFAULT when the file passes and nothing has changed in this process.
// ExecCheck returns 0 for EFAULT and the errno otherwise. Where execveat
// itself is refused (EPERM or ENOSYS: a seccomp filter that allows only
// execve, which the exec being checked uses) it asks again with execve of
// the descriptor's /proc/self/fd name.
func ExecCheck(fd int) unix.Errno {
	_, _, errno := unix.Syscall6(unix.SYS_EXECVEAT, uintptr(fd), uintptr(unsafePointer(&empty[0])),
		badArgv, 0, unix.AT_EMPTY_PATH, 0)
	if errno == unix.EPERM || errno == unix.ENOSYS {
		if name, err := unix.BytePtrFromString("/proc/self/fd/" + strconv.Itoa(fd)); err == nil {
			if _, _, e := unix.Syscall(unix.SYS_EXECVE, uintptr(unsafePointer(name)), badArgv, 0); e != unix.ENOENT {
				errno = e // ENOENT: no procfs; execveat's answer stands
			}
		}
	}
	if errno == unix.EFAULT {
		return 0
	}
	return errno
}
