// Package sigexit ends this process by a signal, so that its parent sees the
// same wait status as for the program uexec ran.
package sigexit

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sigaction is the kernel's struct sigaction for x86-64 rt_sigaction.
type sigaction struct {
	handler  uintptr
	flags    uint64
	restorer uintptr
	mask     uint64
}

// Die sets sig to its default action behind the Go runtime's back, unblocks
// it and sends it to this thread. For a signal whose default action ends
// the process, Die does not return. The Go runtime's own handler must not
// see sig: for SIGSEGV and its kind it would print a crash report of
// uexec's goroutines instead of dying quietly.
func Die(sig syscall.Signal) {
	sa := sigaction{} // SIG_DFL
	unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&sa)), 0, 8, 0, 0)
	var set unix.Sigset_t
	n := uint(sig) - 1
	set.Val[n/64] |= 1 << (n % 64)
	unix.PthreadSigmask(unix.SIG_UNBLOCK, &set, nil)
	unix.Tgkill(unix.Getpid(), unix.Gettid(), sig)
}
