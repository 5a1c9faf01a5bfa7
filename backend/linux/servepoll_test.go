//go:build linux && amd64

package linux

import (
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestServePollLeavesAP: servePoll's raw wait holds its P, so with as many
// waiters as Ps the last ones wait in the runtime's poll: one P always
// stays the rest of the process's; and every waiter still sees its
// descriptor become readable.
func TestServePollLeavesAP(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	var pipes [3][2]int
	done := make(chan error, len(pipes))
	for i := range pipes {
		if err := unix.Pipe2(pipes[i][:], unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		defer unix.Close(pipes[i][0])
		defer unix.Close(pipes[i][1])
		go func(fd int) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			for {
				n, err := servePoll(fds, 10_000)
				if err == unix.EINTR {
					continue
				}
				if err == nil && n == 0 {
					err = unix.ETIMEDOUT
				}
				done <- err
				return
			}
		}(pipes[i][0])
	}
	time.Sleep(100 * time.Millisecond) // all three waiting
	if n := rawServers.Load(); n != 1 {
		t.Errorf("%d raw waiters with 2 Ps, want 1", n)
	}
	for i := range pipes {
		unix.Write(pipes[i][1], []byte{1})
	}
	for range pipes {
		select {
		case err := <-done:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a waiter did not see its pipe become readable in 10 s")
		}
	}
	if n := rawServers.Load(); n != 0 {
		t.Errorf("%d raw waiters left", n)
	}
}
