//go:build linux && amd64

package linux

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/execsw"
	"github.com/uexec/uexec/internal/sys"
)

// ExitEvent is the end of a process of the tree, reported with the image
// the last exec uexec saw of it gave it (TreeOptions.OnExit).
type ExitEvent struct {
	Pid  int       // the process's (thread group) id
	Time time.Time // when uexec learnt of the end (its reap)
	// Planned is whether the image is one uexec planned: only then are
	// Path, Comm, Program and UID set. A process whose every exec failed,
	// was left to the kernel before planning, or was killed past the
	// point of no return ends with Planned false.
	Planned bool
	// Path, Comm and Program are the image's: the program as the exec
	// resolved it, its comm at the exec, and the file the caller named
	// (execsw.Plan.Program).
	Path    string
	Comm    string
	Program execsw.Attr
	UID     uint32 // the real uid of the exec
	// Status is its wait status, as its parent reaped it.
	Status unix.WaitStatus
}

// exitWatch learns how each process of the untraced tree ends: none of
// them but the first is uexec's child. Each one that exec'd gets a pidfd
// (pidfd_open at its first exec notification; a pidfd stays with the
// process across its execs) in an epoll set, registered for no event:
// epoll then reports only EPOLLHUP, which pidfd_poll gives once the process
// is reaped (at its zombie state only EPOLLIN, which is not asked for).
// Then PIDFD_GET_INFO with PIDFD_INFO_EXIT (Linux 6.15) gives its wait
// status to any holder of the pidfd; before the reap it has none
// (exitinfo_test.go measures both). The cost is one pidfd_open and one
// epoll_ctl per process, not per exec, and no thread.
type exitWatch struct {
	ep     int
	procs  map[int]*watched
	onExit func(*ExitEvent)
	evs    []unix.EpollEvent
}

// watched is one process: its pidfd (-1 for the first program, which
// this process reaps itself) and its image (nil when unknown: no exec
// yet, or one left to the kernel before uexec planned it; its end is
// reported without an image).
type watched struct {
	pidfd int
	img   *ExitEvent
}

func newExitWatch(onExit func(*ExitEvent)) (*exitWatch, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	return &exitWatch{ep: ep, procs: map[int]*watched{}, onExit: onExit, evs: make([]unix.EpollEvent, 64)}, nil
}

// exitImage is what an exec of plan gives a process, for its ExitEvent.
// The real uid does not change at an exec.
func exitImage(plan *execsw.Plan, path string) *ExitEvent {
	if plan.Fatal != nil {
		// Killed past the point of no return, whoever makes the exec:
		// no crash of the program (NetBSD's exec exits without
		// sigexit then), as the stub's own death there is not.
		return nil
	}
	if len(plan.Chain) > 0 {
		path = plan.Chain[0].Path
	}
	return &ExitEvent{Planned: true, Path: path, Comm: plan.Comm, Program: plan.Program, UID: plan.Cred.UID}
}

// child records the image of the first program, which is this process's
// child: its status comes from reaped.
func (w *exitWatch) child(pid int, img *ExitEvent) {
	w.procs[pid] = &watched{pidfd: -1, img: img}
}

// track watches process tgid, which is waiting in an exec notification
// (so alive: a pidfd opened later could miss a program that crashes at
// once and is reaped by its parent). Exits already reaped are reported
// first: pid tgid may be a new process with an old one's number.
func (w *exitWatch) track(tgid int) {
	w.drain()
	if w.procs[tgid] != nil {
		return
	}
	fd, err := unix.PidfdOpen(tgid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return // gone already: its end is not seen
	}
	if err := unix.EpollCtl(w.ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: 0, Fd: int32(tgid)}); err != nil {
		unix.Close(fd)
		return
	}
	w.procs[tgid] = &watched{pidfd: fd}
}

// execd records that process tgid now runs img (nil: an image uexec does
// not know, whose end is reported without one).
func (w *exitWatch) execd(tgid int, img *ExitEvent) {
	if p := w.procs[tgid]; p != nil {
		p.img = img
	}
}

// reaped reports the first program's end, after the ends of the
// processes it reaped (their pidfds are hung up by then, but their events
// may wait in the epoll set).
func (w *exitWatch) reaped(pid int, ws unix.WaitStatus) {
	w.drain()
	if p := w.procs[pid]; p != nil && p.pidfd < 0 {
		delete(w.procs, pid)
		w.report(pid, p.img, ws)
	}
}

// drain reports the processes reaped since the last call, without
// waiting.
func (w *exitWatch) drain() { w.drainWait(0) }

// drainWait is drain waiting up to ms milliseconds for a first reap.
func (w *exitWatch) drainWait(ms int) {
	for {
		n, err := unix.EpollWait(w.ep, w.evs, ms)
		ms = 0
		if err == unix.EINTR {
			continue
		}
		if err != nil || n <= 0 {
			return
		}
		for _, ev := range w.evs[:n] {
			tgid := int(ev.Fd)
			p := w.procs[tgid]
			if p == nil || p.pidfd < 0 {
				continue
			}
			info := unix.PidfdInfo{Mask: unix.PIDFD_INFO_EXIT}
			err := unix.IoctlPidfdInfo(p.pidfd, &info)
			unix.EpollCtl(w.ep, unix.EPOLL_CTL_DEL, p.pidfd, nil)
			unix.Close(p.pidfd)
			delete(w.procs, tgid)
			if err == nil && info.Mask&unix.PIDFD_INFO_EXIT != 0 {
				w.report(tgid, p.img, unix.WaitStatus(info.Exit_code))
			}
		}
		if n < len(w.evs) {
			return
		}
	}
}

// zombieStatus is the wait status of process tgid, the process of pidfd,
// if it has ended and is not reaped (a zombie): the exit_code field of
// /proc/PID/stat (proc(5), field 52). The pidfd keeps the number from
// being reused until the reap, after which PIDFD_INFO_EXIT has the status
// and drain reports it.
func zombieStatus(tgid, pidfd int) (unix.WaitStatus, bool) {
	info := unix.PidfdInfo{Mask: unix.PIDFD_INFO_EXIT}
	if err := unix.IoctlPidfdInfo(pidfd, &info); err != nil || info.Mask&unix.PIDFD_INFO_EXIT != 0 {
		return 0, false // reaped: drain's to report
	}
	b, err := sys.ReadFile("/proc/" + strconv.Itoa(tgid) + "/stat")
	if err != nil {
		return 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:])) // from field 3, the state
	const exitCode = 52 - 3
	if len(f) <= exitCode || f[0] != "Z" {
		return 0, false
	}
	code, err := strconv.ParseUint(f[exitCode], 10, 32)
	if err != nil {
		return 0, false
	}
	return unix.WaitStatus(code), true
}

// pending reports whether a watched process's end is still to come.
func (w *exitWatch) pending() bool {
	for _, p := range w.procs {
		if p.pidfd >= 0 {
			return true
		}
	}
	return false
}

func (w *exitWatch) report(pid int, img *ExitEvent, ws unix.WaitStatus) {
	var ev ExitEvent
	if img != nil {
		ev = *img
	}
	ev.Pid, ev.Status, ev.Time = pid, ws, time.Now()
	w.onExit(&ev)
}

// exitLinger bounds how long close waits for reaps it was not told of yet.
const exitLinger = 100 * time.Millisecond

// close reports what is left to report and releases the descriptors.
// With gone, no process of the tree is alive any more (none uses its
// filter), but some may not be reaped yet: one whose parent died before
// it, now init's or a subreaper's, which may take its time (or never reap
// it): such a zombie is reported with the status procfs shows of it
// (zombieStatus); a reap whose wake-up has not come yet is waited for,
// exitLinger in all.
func (w *exitWatch) close(gone bool) {
	w.drain()
	// The filter's end comes as the last process exits, before it is a
	// zombie: each is looked at again until it is one (or reaped).
	for deadline := time.Now().Add(exitLinger); gone && w.pending(); {
		for tgid, p := range w.procs {
			if p.pidfd < 0 {
				continue
			}
			if ws, ok := zombieStatus(tgid, p.pidfd); ok {
				unix.EpollCtl(w.ep, unix.EPOLL_CTL_DEL, p.pidfd, nil)
				unix.Close(p.pidfd)
				delete(w.procs, tgid)
				w.report(tgid, p.img, ws)
			}
		}
		if !w.pending() || time.Now().After(deadline) {
			break
		}
		w.drainWait(2)
	}
	for _, p := range w.procs {
		if p.pidfd >= 0 {
			unix.Close(p.pidfd)
		}
	}
	w.procs = nil
	unix.Close(w.ep)
}
