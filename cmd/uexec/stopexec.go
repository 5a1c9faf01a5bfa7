package main

import (
	"fmt"
	"io"
)

// --stop-at-entry and --stop-at-exec GLOB: NetBSD's PS_STOPEXEC (sysctl
// proc.PID.stopexec), which leaves a process stopped after its exec, before
// its first instruction, until SIGCONT. uexec follows the stub to the
// entry and detaches with SIGSTOP there, so the stop is a plain one (state
// T, TracerPid 0) that gdb -p can attach to.

// stopOption records --stop-at-entry.
func (o *options) stopOption(name string, get func() string) error {
	o.stopAtEntry = true
	return nil
}

// checkStop refuses what cannot stop: with --once uexec becomes the
// program and has nobody left to follow it to the entry.
func (o *options) checkStop() error {
	if o.once && (o.stopAtEntry) {
		return fmt.Errorf("--stop-at-entry needs the tree mode: with --once uexec becomes the program and cannot stop it at its entry")
	}
	return nil
}

// sayStopped tells the user which pid waits for a debugger or SIGCONT.
func sayStopped(stderr io.Writer, pid int) {
	fmt.Fprintf(stderr, "uexec: pid %d stopped at its entry point\n", pid)
}
