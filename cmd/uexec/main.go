// Command uexec runs and explains program execution with a user-space
// execve engine. See README.md for the reference.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/uexec/uexec"
)

func main() {
	if code, ok := uexec.ServeHelper(os.Args[1:]); ok {
		os.Exit(code)
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
	case "log":
		return cmdLog(stdin, stdout, stderr, args[1:])
	case "completion":
		return cmdCompletion(stdout, stderr, args[1:])
	case "man":
		manPage(stdout)
		return 0
	case "help", "-h", "--help":
		io.WriteString(stdout, usage)
		return 0
	}
	io.WriteString(stderr, "uexec: unknown command "+args[0]+"\n"+usage)
	return exitUsage
}
