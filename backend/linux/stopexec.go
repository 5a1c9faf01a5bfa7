//go:build linux && amd64

package linux

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// NetBSD's PS_STOPEXEC leaves a process stopped after a successful exec,
// before its first instruction, for a debugger to attach. Linux has no such
// flag, and a ptrace stop is the tracer's (state t, TracerPid set): a
// debugger cannot attach while uexec holds it. So the stub runs traced to
// the program's first instruction and uexec detaches with SIGSTOP there:
// the signal is delivered at once, before any instruction of the program,
// and the process is in an ordinary group stop (state T, TracerPid 0) that
// gdb -p attaches to and SIGCONT ends.

// stopTimeout bounds the wait for the group stop after the detach.
const stopTimeout = 5 * time.Second

// detachStopped detaches from pid, which is in a ptrace stop at the
// program's entry, with SIGSTOP: from a signal-delivery stop (a single
// step's SIGTRAP) the signal replaces the trap; from a system-call stop
// (the exit of the kernel's execve) the kernel sends it. Either way it is
// taken before the next user instruction. It waits until /proc shows the
// group stop.
func detachStopped(pid int) error {
	if _, _, e := unix.RawSyscall6(unix.SYS_PTRACE, unix.PTRACE_DETACH, uintptr(pid), 0, uintptr(unix.SIGSTOP), 0, 0); e != 0 {
		return os.NewSyscallError("ptrace(PTRACE_DETACH, SIGSTOP)", fmt.Errorf("pid %d: %w", pid, e))
	}
	deadline := time.Now().Add(stopTimeout)
	for {
		st, err := procState(pid)
		if err != nil {
			return err
		}
		if st == 'T' {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pid %d: state %c %v after the detach with SIGSTOP: %w", pid, st, stopTimeout, unix.ETIMEDOUT)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// procState is the state letter of /proc/PID/stat (R, S, T, t, Z...).
func procState(pid int) (byte, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The state follows the comm, which may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0, fmt.Errorf("pid %d: /proc/PID/stat unparsable: %w", pid, unix.EINVAL)
	}
	return b[i+2], nil
}

// yamaRestricted reports whether Yama's ptrace_scope is 1 (restricted): a
// debugger that is not an ancestor may then attach only to a process that
// named it with PR_SET_PTRACER. Scope 2 and 3 are beyond what the program
// could grant; 0 or no Yama needs nothing.
func yamaRestricted() bool {
	b, err := os.ReadFile("/proc/sys/kernel/yama/ptrace_scope")
	return err == nil && string(bytes.TrimSpace(b)) == "1"
}

// allowAnyPtracer makes the traced stub pid, at a system-call entry stop
// (regs), call prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY) in place of that
// call, then restarts the original call: the stub's own next system call
// is made as if nothing happened. Yama keeps the exception across exec, so
// that gdb -p is allowed on the stopped program under ptrace_scope 1, as
// an ordinary user's gdb is on a process of its own that declared it.
//
// Preconditions: the calling thread traces pid, stopped at the entry of a
// system call; the loop waiting for stops is the caller's (wait).
func allowAnyPtracer(pid int, regs *unix.PtraceRegs, wait func(string) error) error {
	saved := *regs
	r := saved
	r.Orig_rax = unix.SYS_PRCTL
	r.Rdi, r.Rsi, r.Rdx, r.R10, r.R8 = unix.PR_SET_PTRACER, ^uint64(0), 0, 0, 0
	if err := unix.PtraceSetRegs(pid, &r); err != nil {
		return os.NewSyscallError("ptrace(PTRACE_SETREGS)", err)
	}
	if err := unix.PtraceSyscall(pid, 0); err != nil {
		return os.NewSyscallError("ptrace(PTRACE_SYSCALL)", err)
	}
	if err := wait("prctl(PR_SET_PTRACER)"); err != nil {
		return err
	}
	if err := unix.PtraceGetRegs(pid, &r); err != nil {
		return os.NewSyscallError("ptrace(PTRACE_GETREGS)", err)
	}
	if e := int64(r.Rax); e < 0 && e > -4096 {
		return os.NewSyscallError("prctl(PR_SET_PTRACER)", fmt.Errorf("pid %d: %w", pid, unix.Errno(-e)))
	}
	// Back to the original call: at its syscall instruction again, with
	// its number in rax, as a restarted system call is.
	saved.Rax, saved.Rip = saved.Orig_rax, saved.Rip-2
	if err := unix.PtraceSetRegs(pid, &saved); err != nil {
		return os.NewSyscallError("ptrace(PTRACE_SETREGS)", err)
	}
	if err := unix.PtraceSyscall(pid, 0); err != nil {
		return os.NewSyscallError("ptrace(PTRACE_SYSCALL)", err)
	}
	if err := wait("the stub's system call, restarted"); err != nil {
		return err
	}
	return unix.PtraceGetRegs(pid, regs)
}

// entryTimeout bounds the traced run of a stub to the program's entry.
const entryTimeout = 30 * time.Second
