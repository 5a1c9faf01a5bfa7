//go:build linux && amd64

package linux

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// kernelExecOptions are the ptrace options of the helper that lets the
// kernel do the execs of released tracees.
const kernelExecOptions = unix.PTRACE_O_TRACESECCOMP | unix.PTRACE_O_TRACEFORK | unix.PTRACE_O_TRACEVFORK | unix.PTRACE_O_TRACECLONE

// ServeKernelExecs is the helper process of a released tree
// (TreeOptions.Helper): it attaches with PTRACE_SEIZE to every thread id
// read from r (one a line, as the tree hands them over) and to their new
// children, and lets every exec they make go to the kernel, until all are
// gone. It is needed because the tree's seccomp filter stays in the
// processes: Linux 6.18 fails a SECCOMP_RET_TRACE system call with ENOSYS
// when no tracer is attached. It returns the exit status for the helper.
func ServeKernelExecs(r io.Reader) int {
	runtime.LockOSThread()
	type handedID struct {
		pid     int
		stopped bool // in the program's own group-stop: kept
	}
	ids := make(chan handedID)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 0 {
				continue
			}
			if pid, err := strconv.Atoi(f[0]); err == nil {
				ids <- handedID{pid, len(f) > 1 && f[1] == "stopped"}
			}
		}
		close(ids)
	}()
	os.Stdout.Write([]byte{'\n'}) // ready
	tasks := map[int]bool{}
	// handed are the tasks that arrive in a group-stop: the one they
	// report first is undone when it is the tree's SIGSTOP (false), kept
	// when it is the program's own (true).
	handed := map[int]bool{}
	open := true
	for open || len(tasks) > 0 {
		// Take the ids handed over meanwhile; the stops of those already
		// seized are served in between, so that a vfork child handed over
		// first can exec and release its parent.
		for more := open; more; {
			select {
			case id, ok := <-ids:
				if !ok {
					open, more = false, false
					break
				}
				if seize(id.pid) {
					tasks[id.pid] = true
					handed[id.pid] = id.stopped
				}
				// The tree waits for this before it lets the next one go.
				os.Stdout.Write([]byte{'\n'})
			default:
				more = false
			}
		}
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WALL|unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if pid == 0 || err != nil {
			if err != nil && !open {
				break
			}
			time.Sleep(200 * time.Microsecond)
			continue
		}
		if ws.Exited() || ws.Signaled() {
			delete(tasks, pid)
			continue
		}
		if !ws.Stopped() {
			continue
		}
		tasks[pid] = true
		sig := ws.StopSignal()
		switch {
		case isEventStop(ws):
			// PTRACE_SEIZE's stops: the group-stop of the hand-over is
			// undone (PTRACE_CONT resumes a seized task from group-stop),
			// other group-stops (the stop signal, not SIGTRAP) are kept
			// (PTRACE_LISTEN), the other stops (a new child's first, the
			// end of a group-stop) are resumed.
			keep, wasHanded := handed[pid]
			delete(handed, pid)
			if isStopSignal(sig) && (keep || !wasHanded) {
				unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_LISTEN, uintptr(pid), 0, 0, 0, 0)
			} else {
				unix.PtraceCont(pid, 0)
			}
		case sig == syscall.SIGTRAP && ws.TrapCause() > 0:
			if c := ws.TrapCause(); c == unix.PTRACE_EVENT_FORK || c == unix.PTRACE_EVENT_VFORK || c == unix.PTRACE_EVENT_CLONE {
				if child, err := unix.PtraceGetEventMsg(pid); err == nil {
					tasks[int(child)] = true
				}
			}
			unix.PtraceCont(pid, 0)
		default:
			unix.PtraceCont(pid, int(sig))
		}
	}
	return 0
}

// seize attaches to pid as soon as the tree's detach lets it (EPERM while
// the tree still traces it: the tree sends the id just before).
//
// The tree detaches each task into a group-stop (SIGSTOP), so that it
// cannot run untraced between the detach and this PTRACE_SEIZE: an exec it
// made then would fail with ENOSYS (SECCOMP_RET_TRACE without a tracer,
// Linux 6.18).
func seize(pid int) bool {
	for i := 0; i < 100000; i++ {
		_, _, e := unix.RawSyscall6(unix.SYS_PTRACE, unix.PTRACE_SEIZE, uintptr(pid), 0, kernelExecOptions, 0, 0)
		if e == 0 {
			return true
		}
		if e != unix.EPERM {
			return false
		}
		runtime.Gosched()
	}
	return false
}

// helper is the receiving end of a release.
type helper struct {
	w   io.WriteCloser
	ack *os.File // one byte per thread id seized
}

// startHelper starts TreeOptions.Helper, if any, reading thread ids on its
// standard input.
func (tr *Tree) startHelper() *helper {
	h := &helper{}
	if len(tr.opts.Helper) == 0 {
		return h
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return h
	}
	defer pr.Close()
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		pw.Close()
		return h
	}
	defer null.Close()
	ar, aw, err := os.Pipe()
	if err != nil {
		pw.Close()
		return h
	}
	defer aw.Close()
	p, err := os.StartProcess(tr.opts.Helper[0], tr.opts.Helper, &os.ProcAttr{
		Files: []*os.File{pr, aw, null},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	if err != nil {
		pw.Close()
		ar.Close()
		tr.logf("starting the exec helper: %v", err)
		return h
	}
	p.Release()
	var b [1]byte
	if _, err := ar.Read(b[:]); err != nil {
		pw.Close()
		ar.Close()
		return h
	}
	h.w, h.ack = pw, ar
	return h
}

// handOver sends pid, in the signal-delivery-stop of the tree's SIGSTOP,
// to the helper and detaches it with that SIGSTOP delivered: the task stays
// stopped, untraced, until the helper has seized it and resumes it. (Its
// parent may see the stop: a CLD_STOPPED SIGCHLD.) It waits for the
// helper's acknowledgement. Without a helper pid is detached and runs.
//
// jobStopped says pid is in a group-stop of the program's own (job
// control): the helper keeps it stopped rather than resuming it.
func (h *helper) handOver(pid int, jobStopped bool) {
	if h.w == nil {
		ptraceDetach(pid, 0)
		return
	}
	line := strconv.Itoa(pid)
	if jobStopped {
		line += " stopped"
	}
	_, err := fmt.Fprintf(h.w, "%s\n", line)
	ptraceDetach(pid, int(unix.SIGSTOP))
	if err == nil {
		var b [1]byte
		h.ack.Read(b[:])
	}
}

func (h *helper) close() {
	if h.w != nil {
		h.w.Close()
		h.ack.Close()
	}
}
