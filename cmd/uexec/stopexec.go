package main

import (
	"fmt"
	"io"
	"path"
	"path/filepath"
)

// --stop-at-entry and --stop-at-exec GLOB: NetBSD's PS_STOPEXEC (sysctl
// proc.PID.stopexec), which leaves a process stopped after its exec, before
// its first instruction, until SIGCONT. uexec follows the stub to the
// entry and detaches with SIGSTOP there, so the stop is a plain one (state
// T, TracerPid 0) that gdb -p can attach to.

// stopOption records --stop-at-entry or --stop-at-exec GLOB.
func (o *options) stopOption(name string, get func() string) error {
	if name == "--stop-at-entry" {
		o.stopAtEntry = true
		return nil
	}
	glob := get()
	if _, err := path.Match(glob, ""); err != nil {
		return fmt.Errorf("--stop-at-exec %q: %v", glob, err)
	}
	o.stopAtExec = append(o.stopAtExec, glob)
	return nil
}

// stopMatch reports whether an exec stops under --stop-at-exec: a glob
// (path.Match, so * does not cross a /) matches the path as passed to
// execve, or the program file it names, absolute with symlinks resolved
// ("sh" run through PATH is matched by "*/sh" and by "/usr/bin/dash").
func (o *options) stopMatch(passed, resolved string) bool {
	for _, g := range o.stopAtExec {
		for _, p := range []string{passed, resolved} {
			if ok, _ := path.Match(g, p); ok && p != "" {
				return true
			}
		}
	}
	return false
}

// resolvedPath is path absolute (against dir) with symlinks resolved, or
// "" when it does not resolve.
func resolvedPath(p, dir string) string {
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		return ""
	}
	return r
}

// checkStop refuses what cannot stop: with --once uexec becomes the
// program and has nobody left to follow it to the entry.
func (o *options) checkStop() error {
	if o.once && (o.stopAtEntry || len(o.stopAtExec) > 0) {
		return fmt.Errorf("--stop-at-entry and --stop-at-exec need the tree mode: with --once uexec becomes the program and cannot stop it at its entry")
	}
	return nil
}

// sayStopped tells the user which pid waits for a debugger or SIGCONT.
func sayStopped(stderr io.Writer, pid int) {
	fmt.Fprintf(stderr, "uexec: pid %d stopped at its entry point\n", pid)
}
