// Command uexec runs and explains program execution with a user-space
// execve engine. See README.md for the reference.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	backend "github.com/uexec/uexec/backend/linux"
)

// serveKernelExecsArg makes uexec the helper that --no-wait-descendants
// leaves to let the kernel do the later execs of the remaining processes:
// their tracer (backend ServeKernelExecs) for a traced tree, or, with the
// extra argument "notify", the listener of an untraced one (ServeNotify).
const serveKernelExecsArg = "__serve-kernel-execs"

func main() {
	if len(os.Args) == 2 && os.Args[1] == serveKernelExecsArg {
		os.Exit(backend.ServeKernelExecs(os.Stdin))
	}
	if len(os.Args) == 3 && os.Args[1] == serveKernelExecsArg && os.Args[2] == "notify" {
		os.Exit(backend.ServeNotify())
	}
	initialSigMask = readSigMask()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGPIPE)
	defer stop()
	os.Exit(run(ctx, os.Stdin, os.Stdout, os.Stderr, os.Args[1:]))
}

// Exit statuses, as env(1) uses them.
const (
	exitUsage    = 125 // uexec itself failed
	exitCannot   = 126 // the program was found but could not be run
	exitNotFound = 127 // the program was not found
)

const usage = `usage: uexec COMMAND [OPTIONS] [NAME=VALUE]... [--] PROGRAM [ARG]...

PROGRAM "-" reads the program (an ELF or a #! script) from standard input and
execs it as fexecve(3) of a sealed memfd would (/dev/fd/3, comm memfd:stdin).

Commands:
  plan    show what an exec of PROGRAM would do, without running anything
  run     run PROGRAM with the exec done by uexec
  help    show this help

Options (plan and run):
  -i, --ignore-environment   start with an empty environment
  -u, --unset NAME           remove NAME from the environment
  -C, --chdir DIR            change to DIR first
  -a, --argv0 NAME           pass NAME as argv[0] instead of PROGRAM
      --no-random            no address randomisation (like setarch -R)
      --emul-root DIR        look absolute program and interpreter names up
                             under DIR first, then in / (NetBSD's emulation root)
  NAME=VALUE                 set an environment variable

Options (plan):
      --json                 print the plan as JSON (schema in README.md)

Options (run):
  -v, --verbose              say what differs from a kernel exec, and why
      --once                 load only PROGRAM, in uexec's place (same pid, no
                             ptrace); the kernel does the execs it makes
      --log-execs FILE       one JSON line per exec of the process tree ("-": stderr)
      --no-wait-descendants  exit when PROGRAM does; descendants still running
                             continue, their later execs done by the kernel
      --stop-at-entry        leave PROGRAM stopped at its first instruction
                             (state T, untraced) for gdb -p; SIGCONT runs it
      --stop-at-exec GLOB    the same for each exec of the tree whose path, as
                             passed or resolved, matches GLOB (path.Match)

By default run follows the whole process tree, untraced: every execve and
execveat of PROGRAM and its descendants reaches uexec through a seccomp
filter (seccomp user notification; nothing else is stopped) and is done by
uexec, or by the kernel where only it is exact (--verbose says why), and run
exits when the last of them has.
`

func run(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, args []string) int {
	if len(args) == 0 {
		io.WriteString(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "plan":
		return cmdPlan(ctx, stdin, stdout, stderr, args[1:])
	case "run":
		return cmdRun(ctx, stdin, stdout, stderr, args[1:])
	case "help", "-h", "--help":
		io.WriteString(stdout, usage)
		return 0
	}
	io.WriteString(stderr, "uexec: unknown command "+args[0]+"\n"+usage)
	return exitUsage
}
