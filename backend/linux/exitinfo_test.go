//go:build linux && amd64

package linux

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/internal/testenv"
)

// crashChild starts testdata/crashchild.c and returns its grandchild's
// pid, a func that makes the grandchild fault and waits for the "zombie"
// line, and a func that lets the parent reap it. The test's cleanup
// waits (with a deadline) for crashchild to end.
func crashChild(t *testing.T) (pid int, fault, reap func()) {
	prog := testenv.BuildC(t, "testdata/crashchild.c")
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	reapR, reapW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(prog)
	cmd.Stdin = stdinR
	cmd.ExtraFiles = []*os.File{reapR}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stdinR.Close()
	reapR.Close()
	waited := make(chan error, 1)
	t.Cleanup(func() {
		stdinW.Close()
		reapW.Close()
		select {
		case err := <-waited:
			if err != nil {
				t.Errorf("crashchild: %v (0: the grandchild died of SIGSEGV)", err)
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Error("crashchild did not end")
		}
	})
	lines := make(chan string, 2)
	go func() {
		br := bufio.NewReader(out)
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				close(lines)
				waited <- cmd.Wait()
				return
			}
			lines <- strings.TrimSpace(l)
		}
	}()
	line := func() string {
		select {
		case l := <-lines:
			return l
		case <-time.After(10 * time.Second):
			t.Fatal("no line from crashchild in 10 s")
		}
		return ""
	}
	pid, err = strconv.Atoi(line())
	if err != nil {
		t.Fatal(err)
	}
	fault = func() {
		stdinW.Close()
		if l := line(); l != "zombie" {
			t.Fatalf("crashchild said %q", l)
		}
	}
	return pid, fault, func() { reapW.Close() }
}

// TestPidfdExitInfo guards what exitWatch relies on (Linux 6.15 and
// later): a process holding a pidfd of a process that is not its child
// (here a grandchild that dies of SIGSEGV) learns its wait status through
// PIDFD_GET_INFO with PIDFD_INFO_EXIT once the parent has reaped it, not
// before; an epoll registration with no events reports EPOLLHUP at the
// reap and nothing at the zombie state.
func TestPidfdExitInfo(t *testing.T) {
	pid, fault, reap := crashChild(t)
	pidfd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		t.Fatalf("pidfd_open(%d): %v", pid, err)
	}
	defer unix.Close(pidfd)
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ep)
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, pidfd, &unix.EpollEvent{Events: 0, Fd: int32(pid)}); err != nil {
		t.Fatal(err)
	}
	exitInfo := func() (unix.PidfdInfo, error) {
		info := unix.PidfdInfo{Mask: unix.PIDFD_INFO_EXIT}
		err := unix.IoctlPidfdInfo(pidfd, &info)
		return info, err
	}
	if info, err := exitInfo(); err != nil || info.Mask&unix.PIDFD_INFO_EXIT != 0 {
		t.Errorf("alive: PIDFD_GET_INFO: mask %#x, %v; want no exit info", info.Mask, err)
	}
	evs := make([]unix.EpollEvent, 1)

	fault()
	if n, err := unix.EpollWait(ep, evs, 100); n != 0 || err != nil {
		t.Errorf("zombie: epoll_wait = %d (%#x), %v; want nothing", n, evs[0].Events, err)
	}
	if info, err := exitInfo(); err != nil || info.Mask&unix.PIDFD_INFO_EXIT != 0 {
		t.Errorf("zombie: PIDFD_GET_INFO: mask %#x, %v; want no exit info before the reap", info.Mask, err)
	}

	reap() // the parent reaps it
	n, err := unix.EpollWait(ep, evs, 10_000)
	if n != 1 || err != nil || evs[0].Events&unix.EPOLLHUP == 0 || evs[0].Fd != int32(pid) {
		t.Fatalf("reaped: epoll_wait = %d (%#x), %v; want EPOLLHUP", n, evs[0].Events, err)
	}
	info, err := exitInfo()
	if err != nil || info.Mask&unix.PIDFD_INFO_EXIT == 0 {
		t.Fatalf("reaped: PIDFD_GET_INFO: mask %#x, %v; want exit info", info.Mask, err)
	}
	if ws := unix.WaitStatus(info.Exit_code); !ws.Signaled() || ws.Signal() != syscall.SIGSEGV {
		t.Errorf("reaped: exit code %#x, want death by SIGSEGV", info.Exit_code)
	}
}

// TestExitWatch: exitWatch reports a grandchild's death by SIGSEGV with
// the image recorded at its exec, once its parent has reaped it.
func TestExitWatch(t *testing.T) {
	var got []*ExitEvent
	w, err := newExitWatch(func(ev *ExitEvent) { got = append(got, ev) })
	if err != nil {
		t.Fatal(err)
	}
	defer w.close(false)
	pid, fault, reap := crashChild(t)
	w.track(pid)
	w.execd(pid, &ExitEvent{Planned: true, Path: "/x/crash", Comm: "crash", UID: 7})
	fault()
	w.drain()
	if len(got) != 0 {
		t.Fatalf("reported before the reap: %+v", got[0])
	}
	reap()
	fds := []unix.PollFd{{Fd: int32(w.ep), Events: unix.POLLIN}}
	if n, err := unix.Poll(fds, 10_000); n != 1 || err != nil {
		t.Fatalf("poll of the epoll set: %d, %v", n, err)
	}
	w.drain()
	if len(got) != 1 {
		t.Fatalf("%d reports, want 1", len(got))
	}
	if ev := got[0]; ev.Pid != pid || !ev.Planned || ev.Time.IsZero() || ev.Path != "/x/crash" || ev.UID != 7 || !ev.Status.Signaled() || ev.Status.Signal() != syscall.SIGSEGV {
		t.Errorf("report %+v, want pid %d /x/crash uid 7 SIGSEGV", ev, pid)
	}
	if len(w.procs) != 0 {
		t.Errorf("still watched: %v", w.procs)
	}
}

// TestZombieStatus: an ended process not yet reaped has its wait status in
// /proc/PID/stat (what exitWatch.close reports of an orphan that init has
// not reaped); once reaped, zombieStatus leaves it to PIDFD_INFO_EXIT.
func TestZombieStatus(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", "read x; exit 3") // ends when its stdin does
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		cmd.Wait()
		t.Fatal(err)
	}
	defer unix.Close(pidfd)
	if ws, ok := zombieStatus(pid, pidfd); ok {
		t.Errorf("a live process: status %v", ws)
	}
	in.Close()
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	if n, err := unix.Poll(fds, 10_000); n != 1 || err != nil {
		t.Fatalf("waiting 10 s for the child's exit: %d, %v", n, err)
	}
	ws, ok := zombieStatus(pid, pidfd)
	if !ok || !ws.Exited() || ws.ExitStatus() != 3 {
		t.Errorf("zombie: %v %v, want exit 3", ws, ok)
	}
	cmd.Wait()
	if ws, ok := zombieStatus(pid, pidfd); ok {
		t.Errorf("reaped: status %v from procfs", ws)
	}
}
