//go:build linux && amd64

package linux

import (
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// The first program is this process's child, and a shell that runs the
// supervisor waits for the supervisor: when the program stops for job
// control on its own (a signal to its pid, `kill -STOP $$`), the shell would
// not see it unless the supervisor stops too (TreeOptions.OnFirstStop). A
// pidfd says nothing of stops, so SIGCHLD wakes the serving thread, which
// alone waits for the first program (its waits for a redirect's ptrace
// stops must not race another thread's): wait4 with WUNTRACED.

// watchFirstStops returns the read end of a pipe that gets a byte for each
// SIGCHLD of this process while the tree is served, or nil without
// OnFirstStop.
func (tr *Tree) watchFirstStops() *os.File {
	if tr.opts.OnFirstStop == nil {
		return nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		tr.logf("the first program's stops are not passed on: %v", err)
		return nil
	}
	if err := unix.SetNonblock(int(w.Fd()), true); err != nil {
		r.Close()
		w.Close()
		return nil
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGCHLD)
	go func() {
		defer w.Close()
		for {
			select {
			case <-sigs:
				w.Write([]byte{0}) // a full pipe has a wake-up pending
			case <-tr.done:
				signal.Stop(sigs)
				return
			}
		}
	}()
	return r
}

// firstStopped drains the wake-ups on descriptor fd (-1: none) and reports
// a job control stop of the first program to OnFirstStop; an end found
// there is recorded as reapFirst's.
func (tr *Tree) firstStopped(fd int32) {
	if fd >= 0 {
		var b [64]byte
		unix.Read(int(fd), b[:])
	}
	if tr.firstGone {
		return
	}
	var ws unix.WaitStatus
	pid, err := unix.Wait4(tr.Pid, &ws, unix.WUNTRACED|unix.WNOHANG, nil)
	switch {
	case pid != tr.Pid || err != nil:
	case ws.Stopped():
		tr.opts.OnFirstStop(tr.Pid, ws.StopSignal())
	case ws.Exited() || ws.Signaled():
		tr.firstEnded(ws)
	}
}
