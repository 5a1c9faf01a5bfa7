//go:build linux && amd64

package linux

import (
	"golang.org/x/sys/unix"
)

// The first program is this process's child, and a shell that runs the
// supervisor waits for the supervisor: when the program stops for job
// control on its own (a signal to its pid, `kill -STOP $$`), the shell would
// not see it unless the supervisor stops too (TreeOptions.OnFirstStop). A
// pidfd says nothing of stops, and only the serving thread may wait for the
// first program (its waits for a redirect's ptrace stops must not race
// another thread's): it looks with wait4(WUNTRACED|WNOHANG) after each exec
// it serves and at least every firstStopPoll when idle. SIGCHLD would say
// it at once, but every ptrace stop of every redirect sends one too, and
// each woke the runtime's signal goroutine: ~45 µs an exec of the tree.
const firstStopPoll = 100 // ms

// firstStopped reports a job control stop of the first program to
// OnFirstStop; an end found there is recorded as reapFirst's.
func (tr *Tree) firstStopped() {
	if tr.opts.OnFirstStop == nil || tr.firstGone {
		return
	}
	var ws unix.WaitStatus
	pid, err := unix.Wait4(tr.Pid, &ws, unix.WUNTRACED|unix.WNOHANG, nil)
	switch {
	case pid != tr.Pid || err != nil:
	case ws.Stopped() && tr.firstAtEntry && ws.StopSignal() == unix.SIGSTOP:
		// The stop StopAtExec left it in, for a debugger: no stop of
		// the job (as with StopAtEntry, whose tree has no OnFirstStop).
		tr.firstAtEntry = false
	case ws.Stopped():
		tr.opts.OnFirstStop(tr.Pid, ws.StopSignal())
	case ws.Exited() || ws.Signaled():
		tr.firstEnded(ws)
	}
}

// leftStopped records that an exec by process tgid was left stopped at its
// entry (stopped), so that the first program's stop there is not taken
// for one of the job.
func (tr *Tree) leftStopped(tgid int, stopped bool) {
	if stopped && tgid == tr.Pid {
		tr.firstAtEntry = true
	}
}
