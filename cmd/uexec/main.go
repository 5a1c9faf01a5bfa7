// Command uexec runs and explains program execution with a user-space
// execve engine. See README.md for the reference.
package main

import (
	"io"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"

	"github.com/uexec/uexec"
)

// uexec keeps no memory profile: sampling allocations costs every start.
func init() { runtime.MemProfileRate = 0 }

func main() {
	growStack()
	if code, ok := uexec.ServeHelper(os.Args[1:]); ok {
		os.Exit(code)
	}
	initialSigMask = readSigMask()
	os.Exit(run(os.Stdin, os.Stdout, os.Stderr, os.Args[1:]))
}

// growStack grows the main goroutine's stack to 128 KiB at once, while it
// holds two frames: planning and building an exec would grow it from 8 KiB
// a doubling at a time, each copying and unwinding a deeper stack through
// tables not yet read (~70 µs of a cold `uexec run --once`).
//
//go:noinline
func growStack() {
	var frame [60 << 10]byte
	keepFrame(frame[:])
}

//go:noinline
func keepFrame([]byte) {}

// keepOnSIGPIPE makes a write to a closed pipe an EPIPE error instead of
// uexec's death, for the commands that write more than an error message
// (plan, log, a tree's log). An exec in place skips it: os/signal starts a
// thread of its own, which the exec would have to end again.
var keepOnSIGPIPE = sync.OnceFunc(func() { signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE) })

// Exit statuses, as env(1) uses them.
const (
	exitUsage    = 125 // uexec itself failed
	exitCannot   = 126 // the program was found but could not be run
	exitNotFound = 127 // the program was not found
)

func run(stdin io.Reader, stdout, stderr io.Writer, args []string) int {
	if len(args) == 0 {
		io.WriteString(stderr, usage())
		return exitUsage
	}
	switch args[0] {
	case "plan":
		return cmdPlan(stdin, stdout, stderr, args[1:])
	case "run":
		return cmdRun(stdin, stdout, stderr, args[1:])
	case "log":
		keepOnSIGPIPE()
		return cmdLog(stdin, stdout, stderr, args[1:])
	case "completion":
		return cmdCompletion(stdout, stderr, args[1:])
	case "man":
		manPage(stdout)
		return 0
	case "help", "-h", "--help":
		io.WriteString(stdout, usage())
		return 0
	}
	io.WriteString(stderr, "uexec: unknown command "+args[0]+"\n"+usage())
	return exitUsage
}
