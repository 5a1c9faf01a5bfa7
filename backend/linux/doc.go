// Package linux is the real-process backend: it applies an execsw.Plan to a
// new Linux process without the kernel's ELF loader for the program.
//
// Start executes the stub (package internal/stub: a tiny freestanding ELF
// linked at 0x10000001000, run from a sealed memfd or, where memfds are
// not executable, from a cached file; see StubPath) under ptrace. The
// kernel's exec of the stub gives a fresh, flushed address space: other
// threads gone, caught handlers reset, close-on-exec descriptors closed,
// rseq, fs/gs and FPU state reset. From then on one locked OS thread drives
// the stub, injecting system calls at a `syscall` instruction (the stub's
// own, then one in the vdso):
//
//  1. unmap the stub's image, and the vdso if the plan needs it elsewhere;
//  2. run the plan's vm commands (vm.Run) with mmap, munmap and mprotect
//     on the plan's files, passed to the stub as inherited descriptors;
//     images the planner let the kernel place (vm.FlagBase) follow the
//     stub's own randomised mmap_base, or land exactly at the planned
//     address with Options.NoRandom;
//  3. map the vdso again with arch_prctl(ARCH_MAP_VDSO_64) where the kernel
//     would have put it, after the interpreter;
//  4. lay the stack out again for the stub's stack top (with fresh AT_RANDOM
//     bytes, the live vdso, and AT_PHDR, AT_ENTRY, AT_BASE moved with their
//     images), size the [stack] mapping as the kernel would and write it;
//  5. prctl(PR_SET_MM, PR_SET_MM_MAP) with the code, data, brk, stack,
//     argument and environment bounds, the aux vector and exe_fd;
//     prctl(PR_SET_NAME); set-id credentials when the supervisor is root;
//     close the plan's descriptors;
//  6. set the entry registers (all general registers 0, rip, rsp, rflags
//     0x202, no fs/gs base) and detach. The program is then a plain child
//     of this process: Process.Wait reaps it.
//
// The builder of steps 1 to 5 does not depend on ptrace: it needs only a way
// to make the process execute system calls and to write its memory, so that
// a driver other than ptrace can reuse it.
//
// # Process trees
//
// StartTree keeps tracing the program and everything it starts. Before the
// first image is built, the stub installs a seccomp filter that returns
// SECCOMP_RET_TRACE for execve and execveat (x86-64, x32 and ia32 numbers)
// and allows every other call; the tracer's options follow forks, vforks
// and clones. At an exec's seccomp stop the tracer reads the path, argv and
// envp from the caller (process_vm_readv) and its state from /proc (cwd,
// root, ids, groups, CapEff, NoNewPrivs, personality; prlimit for
// RLIMIT_STACK and RLIMIT_DATA; execveat's dirfd and AT_EMPTY_PATH through
// /proc/PID/fd and fdinfo; the caller's /proc/self is its own pid) and
// plans the exec. A refused exec is skipped with -errno in rax, the caller
// untouched. An accepted one is rewritten to exec the stub (its path and a
// one-string argv written below the caller's red zone); the kernel's exec
// of the stub is the point of no return and does what a kernel exec does
// at that moment (other threads end, the vfork parent is released,
// close-on-exec descriptors close, handlers reset). At the exec's system
// call exit the plan's files are opened inside the process through
// /proc/<uexec>/fd and the builder runs as for Start.
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
//   - /proc/PID/exe names the stub unless the supervisor has CAP_SYS_ADMIN
//     or CAP_CHECKPOINT_RESTORE (prctl's exe_fd): os.Executable, re-exec of
//     /proc/self/exe and $ORIGIN in the main program see the stub.
//   - An observer can see the stub (comm "uexec-stub" or the memfd's
//     name) before the program starts.
//   - Set-id elevation is applied only by a root supervisor; LSM
//     transitions and audit or fanotify exec events do not happen.
//   - A start fails when this process is itself being traced (strace -f,
//     gdb) or ptrace is forbidden.
//   - 32-bit images are not supported (they need a 32-bit stub).
package linux
