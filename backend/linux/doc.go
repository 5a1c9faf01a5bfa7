// Package linux is the real-process backend: it applies an execsw.Plan to a
// new Linux process without the kernel's ELF loader for the program.
//
// The plan is compiled (compile.go) into a program for the plan stub
// (package internal/planstub: a freestanding ELF built from C, linked at
// 0x10000001000), in package internal/wire's versioned format, and handed
// to the stub on a sealed memfd (in a tree, appended to a copy of the stub
// that the caller execs by descriptor). The kernel's exec of the stub gives a
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
//     clears rcx, rdx, rsi, rdi and r11 and returns into the entry: every
//     general register 0, no fs/gs base, FPU in its initial state, nothing
//     of the stub left. rflags is EntryFlags (0x246), not 0x202.
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
// With TreeOptions.Traced, StartTree instead keeps tracing the program and
// everything it starts (the earlier design, described below). Before the
// first image is built, the stub installs a seccomp filter that returns
// SECCOMP_RET_TRACE for execve and execveat (x86-64, x32 and ia32 numbers)
// and allows every other call; the tracer's options follow forks, vforks
// and clones. At an exec's seccomp stop the tracer reads the path, argv and
// envp from the caller (process_vm_readv) and its state from /proc (cwd,
// root, ids, groups, CapEff, NoNewPrivs, personality; prlimit for
// RLIMIT_STACK and RLIMIT_DATA; execveat's dirfd and AT_EMPTY_PATH through
// /proc/PID/fd and fdinfo; the caller's /proc/self is its own pid) and
// plans the exec. A refused exec is skipped with -errno in rax, the caller
// untouched. An accepted one is rewritten to exec the plan stub (its path
// and argv, naming the plan as /proc/<uexec>/fd/N, written below the
// caller's red zone, which a Go program's vfork child cannot spare: see
// writeStubCall); the kernel's exec of the stub is the point of no
// return and does what a kernel exec does at that moment (other threads
// end, the vfork parent is released, close-on-exec descriptors close,
// handlers reset). The stub opens the plan and its files through
// /proc/<uexec>/fd and builds the image as for Start; the tracer holds
// them open until the task's next event.
//
// The first program of a tree, and the execs of callers that cannot reach
// /proc/<uexec>/fd (below), are still built by the tracing stub (package
// internal/stub) with system calls injected through ptrace (builder in
// build.go): the first needs the tree's seizure and seccomp filter set up
// before it runs.
//
// A caller that will lack CAP_SYS_PTRACE once it runs the stub (the
// effective set after a plain exec: the bounding set for euid 0, else the
// ambient set) cannot follow /proc/<uexec>/fd. Its exec runs the stub from
// SharedStubFile instead (a file any user may execute: mode 0555, in a
// 0755 directory of the temporary directory, owned by this process's user,
// content checked), and the plan's files are opened inside the process by
// their resolved names (vm.File.Name) with openat(O_RDONLY|O_CLOEXEC) and
// the caller's own credentials, then checked with an injected fstat to be
// the planned files (dev and inode; a mismatch past the point of no return
// kills the process with SIGSEGV). Before the stub is exec'd, the tracer
// checks with the caller's ids, groups and capabilities that it may search
// every directory on the way and read every file (and execute the stub),
// and that it shares this process's root and mount namespace.
//
// Execs the tree cannot do are left to the kernel and reported
// (ExecEvent.By): 32-bit ABIs, callers without CAP_SYS_PTRACE that could
// not open the plan's files or the stub by name (a file they may execute
// but not read, another root or mount namespace), set-id execs by callers
// that could not set the ids, and callers that cannot execute the stub (a
// chroot without /proc).
//
// The tree is traced with PTRACE_SEIZE semantics: the first stub is
// started untraced (with PR_SET_PDEATHSIG) and seized in the SIGSTOP it
// sends itself, with PTRACE_O_EXITKILL, then continued with SIGCONT; the
// children the kernel attaches are seized too. Group-stops (SIGSTOP,
// SIGTSTP, SIGTTIN, SIGTTOU) are reported as PTRACE_EVENT_STOP and kept
// with PTRACE_LISTEN: the process stays stopped, its parent is notified
// as usual and SIGCONT resumes it, as without a tracer. Other signals are
// delivered from their signal-delivery-stop. Start (and uexec run --once)
// still use PTRACE_TRACEME.
//
// # Differences from a kernel exec
//
// Process.Notes lists those of a given start. Known ones:
//
//   - /proc/PID/exe names the stub unless the stub's process has
//     CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE (prctl's exe_fd):
//     os.Executable, re-exec of /proc/self/exe and $ORIGIN in the main
//     program see the stub.
//   - rflags is 0x246 at the first instruction (EntryFlags), and the 8
//     bytes below the initial stack pointer hold the entry address.
//   - An observer can see the stub (comm "uexec-stub") for the moment
//     before the program starts.
//   - Set-id elevation is applied only where the stub's process may set
//     the ids (root); ExecInPlace leaves such an exec to the kernel. LSM
//     transitions and audit or fanotify exec events do not happen.
//   - StartTree fails when this process is itself being traced (strace -f,
//     gdb) or ptrace is forbidden; Start and ExecInPlace do not need it.
//   - 32-bit images are not supported (they need a 32-bit stub).
package linux
