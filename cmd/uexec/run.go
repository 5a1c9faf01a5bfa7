package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec"
	"github.com/uexec/uexec/internal/sigexit"
	backend "github.com/uexec/uexec/backend/linux"
)

// forwarded are the signals uexec passes on to the program, as a process
// supervisor would; the program decides what they do.
var forwarded = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH}

// ttySignals are the signals a terminal sends to its whole foreground
// process group, which holds the program too: forwarding them again would
// deliver them twice.
var ttySignals = map[os.Signal]bool{syscall.SIGINT: true, syscall.SIGQUIT: true, syscall.SIGWINCH: true}

func cmdRun(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, args []string) int {
	o, err := parseOptions(args, "run")
	if err != nil {
		fmt.Fprintf(stderr, "uexec run: %v\n%s", err, usage)
		return exitUsage
	}
	// Signals that arrive while the program is being built are held and
	// forwarded once it runs.
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, forwarded...)
	defer signal.Stop(sigs)

	p, req, err := o.plan(uexec.NewSwitch())
	if err != nil {
		return failure(stderr, o.argv[0], err)
	}
	defer p.Close()
	files := []*os.File{fileOf(stdin, os.Stdin), fileOf(stdout, os.Stdout), fileOf(stderr, os.Stderr)}
	var logf func(string, ...any)
	if o.verbose {
		logf = func(format string, a ...any) { fmt.Fprintf(stderr, "uexec: "+format+"\n", a...) }
	}
	proc, err := backend.Start(p, &backend.Options{Files: files, Dir: req.Dir, NoRandom: req.NoRandom, Logf: logf})
	if err != nil {
		fmt.Fprintf(stderr, "uexec: %s: %v\n", o.argv[0], err)
		return exitCannot
	}
	if o.verbose {
		for _, n := range proc.Notes {
			fmt.Fprintf(stderr, "uexec: note: %s\n", n)
		}
		if p.Cred.Ignored != "" {
			fmt.Fprintf(stderr, "uexec: note: set-id bits of %s not applied: %s\n", req.Path, p.Cred.Ignored)
		}
	}
	done := make(chan struct{})
	var state *os.ProcessState
	var werr error
	go func() {
		state, werr = proc.Wait()
		close(done)
	}()
	for {
		select {
		case sig := <-sigs:
			if ttySignals[sig] && inForeground() {
				continue
			}
			proc.Signal(sig)
		case <-done:
			if werr != nil {
				fmt.Fprintf(stderr, "uexec: wait: %v\n", werr)
				return exitUsage
			}
			return exitLike(state)
		}
	}
}

// fileOf returns w as an *os.File when it is one, else def: the program's
// standard descriptors are uexec's own.
func fileOf(x any, def *os.File) *os.File {
	if f, ok := x.(*os.File); ok {
		return f
	}
	return def
}

// inForeground reports whether uexec's process group is the foreground one
// of its controlling terminal: then the terminal's signals reached the
// program directly.
func inForeground() bool {
	fd, err := unix.Open("/dev/tty", unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	fg, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
	return err == nil && fg == unix.Getpgrp()
}

// exitLike ends uexec the way the program ended: the same exit status, or
// the same signal so that a shell sees the same wait status. It returns
// only for an exit status.
func exitLike(state *os.ProcessState) int {
	ws, ok := state.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() {
		return state.ExitCode()
	}
	sig := ws.Signal()
	// Die of the same signal, without a core file of uexec's own (the
	// program already dumped its core if it was to).
	signal.Reset(sig)
	unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{})
	sigexit.Die(sig)
	// A signal whose default is to be ignored cannot end us: the shell
	// convention then is 128+signal.
	return 128 + int(sig)
}
