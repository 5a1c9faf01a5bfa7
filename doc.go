// Package uexec is a user-space execve engine for Linux x86-64: the NetBSD
// kernel's exec subsystem (sys/kern/kern_exec.c) rebuilt in Go. It plans an
// exec as the kernel would (lookup, permission checks, #! scripts, ELF and
// its interpreter, the initial stack and aux vector) and builds the image
// in a real process with a small stub, without the kernel's ELF loader.
//
// # Starting a program
//
// An Engine is the front door. Engine.Spawn starts a program the way
// os/exec does, with the exec done by uexec:
//
//	e := uexec.NewEngine()
//	p, err := e.Spawn(ctx, &uexec.SpawnRequest{
//		Path: "/bin/echo", Argv: []string{"echo", "hi"}, Env: os.Environ(),
//	})
//	if err != nil { // errors.Is(err, syscall.ENOENT), ... as execve would fail
//		return err
//	}
//	ws, err := p.WaitStatus()
//
// An exec the kernel would refuse fails with the same errno and starts
// nothing. A failure past the point of no return is a *StartError whose
// Signal (SIGSEGV) killed the process, as Linux kills it.
//
// # A whole process tree
//
// With SpawnRequest.Tree, every execve and execveat of the program and of
// all its descendants comes to the engine (the default of `uexec run`):
// the tree is not traced; a seccomp filter hands each exec to the engine,
// which plans it with the caller's own cwd, root, credentials and limits,
// and builds it, or lets the kernel do it where the plan is the kernel's
// own exec and no binfmt rule, emulation root, policy or StopAtExec is in
// the tree (only the kernel's exec of it is exact; SpawnRequest.Build has
// the engine build those too). SpawnRequest.OnExec receives each exec (an ExecEvent: pid,
// ppid, cwd, argv, the handler chain, the errno of a failed one) and
// SpawnRequest.OnExit each process's end (an ExitEvent), in order: the
// exec log of `uexec run --log-execs` is written from them. The first
// program's status is Process.WaitStatus's, which also waits for the
// engine to finish serving the tree. This needs ptrace: the process using
// the engine must not be traced itself.
//
// # Policies
//
// The engine's exec switch (Engine.Switch, an *execsw.Switch holding the
// native handlers of NewSwitch) takes the policies of NetBSD's exec:
//
//   - binfmt_misc rules for any user, without binfmt_misc:
//     Engine.Binfmt().Register(rule), with rules from binfmt.Parse or
//     binfmt.LoadConf (package format/binfmt);
//   - an emulation root (NetBSD's TRYEMULROOT): SpawnRequest.EmulRoot, a
//     directory absolute names of programs and interpreters are looked up
//     under first;
//   - PaX Segvguard: Engine.Segvguard(cfg) refuses a program that keeps
//     crashing; the engine counts the crashes of what it spawns.
//
// # Lower levels
//
// Engine.Plan plans without starting anything (the plan can be printed,
// as `uexec plan` does, or simulated); Engine.SpawnPlan starts a plan made
// earlier; Engine.ExecInPlace replaces the calling process with a plan's
// program (`uexec run --once`). SelfRequest describes an exec made by this
// process; execsw.Switch.Execve plans an exec for any caller state. A
// program that starts trees with NoWaitDescendants calls ServeHelper
// first in main and names itself in SpawnRequest.Helper.
//
// README.md in the repository is the reference: the CLI, the exec log's
// schema, what differs from a kernel exec and why.
package uexec
