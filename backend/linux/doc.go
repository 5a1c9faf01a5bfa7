// Package linux is the real-process backend: it applies an execsw.Plan to a
// new Linux process without the kernel's ELF loader for the program.
//
// The plan is compiled (compile.go) into a program for the plan stub
// (package internal/planstub: a freestanding ELF built from C, linked at
// 0x10000001000), in package internal/wire's versioned format, and handed
// to the stub on a pipe where it fits one, else on a sealed memfd (in a
// tree, appended to a copy of the stub that the caller execs by
// descriptor). The kernel's exec of the stub gives a
// fresh, flushed address space (other threads gone, caught handlers reset,
// close-on-exec descriptors closed, rseq, fs/gs and FPU state reset, a
// vfork parent released) and is the exec's point of no return. The stub
// then, with ordinary system calls and no tracer:
//
//  1. moves itself to anonymous memory and unmaps its file (so that
//     prctl's exe_fd is accepted later), maps the plan and closes it;
//  2. unmaps the vdso when the plan needs it elsewhere, and runs the plan's
//     vm commands (mmap, munmap, mprotect, pread, clears) on the plan's
//     files; images the planner let the kernel place (vm.FlagBase) follow
//     the stub's own randomised mmap_base, or land exactly at the planned
//     address with ASLR off, and a register keeps how far each moved;
//  3. maps the vdso again with arch_prctl(ARCH_MAP_VDSO_64) where the kernel
//     would have put it, after the interpreter;
//  4. sizes its [stack] mapping as the kernel would, clears what its own
//     start left there and writes the planned stack at the same distance
//     from its real stack top, with every pointer (argv, envp, AT_EXECFN,
//     AT_RANDOM, AT_PLATFORM, AT_PHDR, AT_ENTRY, AT_BASE, AT_SYSINFO_EHDR)
//     fixed up;
//  5. prctl(PR_SET_MM, PR_SET_MM_MAP) with the code, data, brk, stack,
//     argument and environment bounds, the aux vector and exe_fd (again
//     without exe_fd where that is refused); prctl(PR_SET_NAME); set-id
//     credentials when permitted; the signal mask; closes the plan's
//     descriptors;
//  6. unmaps its copy and the plan from a `syscall` in the vdso whose tail
//     clears rcx, rdx, rsi, rdi and r11 and returns into the entry, through
//     the image's bytes that set rflags where it has them (a `popfq; ret` or
//     a function epilogue: gadget.go): every general register 0, no fs/gs
//     base, FPU in its initial state, nothing of the stub left. rflags is
//     EntryFlags: 0x202 through those bytes, else 0x246.
//
// Three drivers start it: Start (as os/exec starts a program: fork, exec
// of the stub with the plan on a descriptor and a status pipe that reports
// a failed step), ExecInPlace (this process execs the stub: uexec run
// --once), and the tree's listener, which redirects an intercepted exec to
// a copy of the stub with the plan appended (notify.go).
// Options.AtEntry (tests) starts the stub under PTRACE_TRACEME and follows
// it to the program's first instruction.
//
// # Process trees
//
// StartTree serves the execs of the program and everything it starts
// without tracing them: the first stub installs a seccomp filter that
// sends execve and execveat to this process as user notifications, and
// each exec is answered with an errno, let through to the kernel, or
// redirected to the plan stub with the caller seized for that moment only
// (see notify.go for the sequence). Forks, exits, signals, stops and waits
// are the kernel's.
//
// Execs the tree cannot do exactly are left to the kernel and reported
// (ExecEvent.By, with the reason in ExecEvent.Note): 32-bit ABIs,
// AT_EXECVE_CHECK, callers this process may not seize or read, callers
// with a mount namespace or root of their own, set-id execs by callers
// that could not set the ids, and images whose mm fields prctl refuses.
// With TreeOptions.KernelExecs, or where this process may not set
// /proc/PID/exe, so are all execs of a tree whose every plan is the
// kernel's own exec (no binfmt rule, emulation root, policy or stop).
//
// # Differences from a kernel exec
//
// Process.Notes lists those of a given start. Known ones:
//
//   - /proc/PID/exe names the stub unless the stub's process has
//     CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE (prctl's exe_fd):
//     os.Executable, re-exec of /proc/self/exe and $ORIGIN in the main
//     program see the stub.
//   - PF_SUPERPRIV is set where the stub set /proc/PID/exe (its
//     capability's use).
//   - rflags is 0x246 at the first instruction of an image without bytes
//     that set it (EntryFlags), and the 8 bytes below the initial stack
//     pointer hold the entry address, below them the words those bytes pop
//     and their address.
//   - An observer can see the stub (comm "uexec-stub") for the moment
//     before the program starts.
//   - Set-id elevation is applied only where the stub's process may set
//     the ids (root); ExecInPlace leaves such an exec to the kernel. LSM
//     transitions and audit or fanotify exec events do not happen.
//   - StartTree fails when this process is itself being traced (strace -f,
//     gdb) or ptrace is forbidden; Start and ExecInPlace do not need it.
//   - 32-bit images are not supported (they need a 32-bit stub).
package linux
