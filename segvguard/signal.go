package segvguard

import "syscall"

// CoreDumpSignal reports whether a process killed by sig dumps core by
// default, and so counts as a crash: Linux's SIG_KERNEL_COREDUMP_MASK
// (include/linux/signal.h): SIGQUIT, SIGILL, SIGTRAP, SIGABRT, SIGFPE,
// SIGSEGV, SIGBUS, SIGSYS, SIGXCPU and SIGXFSZ (SIGEMT has no number on
// x86-64). NetBSD's SA_CORE set is the same but SIGXCPU and SIGXFSZ,
// which dump core on Linux (and POSIX says "A" for them); Linux decides
// here, as it decides what programs observe.
func CoreDumpSignal(sig syscall.Signal) bool {
	switch sig {
	case syscall.SIGQUIT, syscall.SIGILL, syscall.SIGTRAP, syscall.SIGABRT, syscall.SIGFPE,
		syscall.SIGSEGV, syscall.SIGBUS, syscall.SIGSYS, syscall.SIGXCPU, syscall.SIGXFSZ:
		return true
	}
	return false
}
