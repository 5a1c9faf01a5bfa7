//go:build linux && amd64

// Package tracee drives one process through ptrace: it starts a program
// stopped under ptrace, injects system calls into it, reads and writes its
// memory and finally detaches from it or kills it.
//
// All ptrace requests for a tracee must come from the thread that started
// it (the kernel's tracer is a thread, not a process). The caller therefore
// runs Start and every later method from one goroutine that has called
// runtime.LockOSThread and does not unlock it while the tracee is attached.
package tracee

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/internal/sys"
)

// Options say how to start a tracee.
type Options struct {
	Path string   // program to execute
	Argv []string // its arguments
	Env  []string // its environment
	Dir  string   // its working directory; "" keeps ours
	// Files become the child's descriptors 0, 1, 2, ...; -1 leaves a
	// number closed.
	Files []uintptr
	// Sys is copied and passed to the fork; Ptrace and Pdeathsig are
	// overridden.
	Sys *syscall.SysProcAttr
	// NoRandom starts the program with ADDR_NO_RANDOMIZE in its
	// personality (setarch -R); otherwise that flag is cleared.
	NoRandom bool
	// Seize, when not 0, attaches with PTRACE_SEIZE and these ptrace
	// options (PTRACE_O_EXITKILL is added) instead of PTRACE_TRACEME, so
	// that the tracer sees group-stops as PTRACE_EVENT_STOP and its
	// auto-attached children are seized too. The program must stop itself
	// with SIGSTOP at its entry (the stub does).
	Seize int
}

// Tracee is a process stopped under ptrace by the calling thread.
type Tracee struct {
	Pid int
	// Regs are the registers at the exec stop: the template for injected
	// calls (segment selectors, flags).
	Regs unix.PtraceRegs
	// Pending are signals that arrived while the tracee was being driven;
	// Detach delivers the first one.
	Pending []syscall.Signal

	mem    *os.File // /proc/PID/mem
	site   uint64   // address of a `syscall` instruction in the tracee
	state  state
	status unix.WaitStatus // how it ended, once dead
}

type state int

const (
	stopped state = iota
	detached
	dead
)

// ptraceErr wraps err as a failed system call of the tracee pid.
func ptraceErr(call string, pid int, err error) error {
	return os.NewSyscallError(call, fmt.Errorf("pid %d: %w", pid, err))
}

// Start forks and executes o.Path with PTRACE_TRACEME and waits for the
// exec's SIGTRAP stop; with o.Seize it waits for the program's own
// SIGSTOP instead and attaches with PTRACE_SEIZE (see seize). The tracee
// is killed if this process dies (PTRACE_O_EXITKILL; PR_SET_PDEATHSIG
// covers the moment before the attach).
// The caller must clear the death signal (prctl(PR_SET_PDEATHSIG, 0)) in
// the tracee before detaching if the program should not inherit it.
//
// Preconditions: the calling goroutine is locked to its OS thread.
func Start(o *Options) (*Tracee, error) {
	attr := &syscall.ProcAttr{Dir: o.Dir, Env: o.Env, Files: o.Files}
	var spa syscall.SysProcAttr
	if o.Sys != nil {
		spa = *o.Sys
	}
	spa.Ptrace = o.Seize == 0
	// Until the attach the death signal is the only tie to this thread:
	// should it die then, the child dies too.
	spa.Pdeathsig = syscall.SIGKILL
	attr.Sys = &spa

	// The persona is a per-thread attribute that a fork inherits: set it
	// on this (locked) thread around the fork.
	old, err := sys.Personality(sys.PersonalityQuery)
	if err != nil {
		return nil, err
	}
	want := old &^ sys.ADDR_NO_RANDOMIZE
	if o.NoRandom {
		want |= sys.ADDR_NO_RANDOMIZE
	}
	if want != old {
		if _, err := sys.Personality(want); err != nil {
			return nil, err
		}
	}
	pid, err := syscall.ForkExec(o.Path, o.Argv, attr)
	if want != old {
		// Restoring our own persona cannot fail: it was accepted before.
		_, _ = sys.Personality(old)
	}
	if err != nil {
		return nil, fmt.Errorf("starting %s under ptrace: %w", o.Path, err)
	}
	t := &Tracee{Pid: pid}
	if o.Seize != 0 {
		if err := t.seize(o.Seize | unix.PTRACE_O_EXITKILL); err != nil {
			t.Kill()
			return nil, err
		}
	} else {
		ws, err := t.wait()
		if err != nil {
			t.Kill()
			return nil, err
		}
		if !ws.Stopped() || ws.StopSignal() != syscall.SIGTRAP {
			t.Kill()
			return nil, fmt.Errorf("pid %d: status %#x after exec, want a SIGTRAP stop: %w", pid, uint32(ws), unix.ECHILD)
		}
		if err := unix.PtraceSetOptions(pid, unix.PTRACE_O_EXITKILL); err != nil {
			t.Kill()
			return nil, ptraceErr("ptrace(PTRACE_SETOPTIONS)", pid, err)
		}
	}
	if err := unix.PtraceGetRegs(pid, &t.Regs); err != nil {
		t.Kill()
		return nil, ptraceErr("ptrace(PTRACE_GETREGS)", pid, err)
	}
	t.mem, err = os.OpenFile(fmt.Sprintf("/proc/%d/mem", pid), os.O_RDWR, 0)
	if err != nil {
		t.Kill()
		return nil, err
	}
	return t, nil
}

// seize attaches to the untraced child t with PTRACE_SEIZE once it has
// stopped itself (its SIGSTOP at entry), and ends that group-stop with
// SIGCONT, as a shell's fg would: the group is then no longer "stopped"
// for the kernel, and a later group-stop of the program is its own. It
// returns with the tracee in the signal-delivery-stop of that SIGCONT,
// which is suppressed (the next restart passes no signal), at the
// instruction after the stub's kill. Other signals that arrive meanwhile
// are kept in Pending.
func (t *Tracee) seize(opts int) error {
	pid := t.Pid
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, unix.WUNTRACED, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return ptraceErr("wait4", pid, err)
		}
		break
	}
	if ws.Exited() || ws.Signaled() {
		t.state, t.status = dead, ws
		return fmt.Errorf("pid %d: status %#x before its stop, want a SIGSTOP stop: %w", pid, uint32(ws), unix.ECHILD)
	}
	if !ws.Stopped() || ws.StopSignal() != syscall.SIGSTOP {
		return fmt.Errorf("pid %d: status %#x at start, want a SIGSTOP stop: %w", pid, uint32(ws), unix.ECHILD)
	}
	if _, _, e := unix.RawSyscall6(unix.SYS_PTRACE, unix.PTRACE_SEIZE, uintptr(pid), 0, uintptr(opts), 0, 0); e != 0 {
		return ptraceErr("ptrace(PTRACE_SEIZE)", pid, e)
	}
	// The SIGCONT is pending before the tracee can leave its stop, so it
	// reports it before running a single instruction of the stub again.
	if err := unix.Kill(pid, unix.SIGCONT); err != nil {
		return ptraceErr("kill(SIGCONT)", pid, err)
	}
	for {
		ws, err := t.wait()
		if err != nil {
			return err
		}
		if t.state == dead {
			return fmt.Errorf("pid %d died (status %#x) before its start: %w", pid, uint32(ws), os.ErrProcessDone)
		}
		if !ws.Stopped() {
			continue
		}
		sig := ws.StopSignal()
		if ws>>16 == 0 {
			if sig == syscall.SIGCONT {
				return nil
			}
			t.Pending = append(t.Pending, sig)
		}
		// A PTRACE_EVENT_STOP (the seize's trap, the group-stop, the
		// SIGCONT's notification) or another signal: on to the SIGCONT.
		if err := unix.PtraceCont(pid, 0); err != nil {
			return ptraceErr("ptrace(PTRACE_CONT)", pid, err)
		}
	}
}

// wait waits for the next state change of the tracee.
func (t *Tracee) wait() (unix.WaitStatus, error) {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(t.Pid, &ws, unix.WALL, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return ws, ptraceErr("wait4", t.Pid, err)
		}
		if ws.Exited() || ws.Signaled() {
			t.state = dead
			t.status = ws
		}
		return ws, nil
	}
}

// SetSyscallSite says where a `syscall` instruction (bytes 0f 05) is mapped
// executable in the tracee; Syscall runs it.
func (t *Tracee) SetSyscallSite(addr uint64) { t.site = addr }

// SyscallSite returns the address SetSyscallSite set.
func (t *Tracee) SyscallSite() uint64 { return t.site }

// Syscall makes the tracee execute system call nr with up to six
// arguments and returns its result. A result in [-4095, -1] is returned as
// the errno, wrapped with name and the pid.
func (t *Tracee) Syscall(name string, nr uint64, args ...uint64) (uint64, error) {
	if t.state != stopped {
		return 0, fmt.Errorf("%s: pid %d: %w", name, t.Pid, os.ErrProcessDone)
	}
	if t.site == 0 {
		return 0, fmt.Errorf("%s: pid %d: no syscall instruction known: %w", name, t.Pid, unix.EFAULT)
	}
	if len(args) > 6 {
		return 0, fmt.Errorf("%s: %d arguments: %w", name, len(args), unix.EINVAL)
	}
	var a [6]uint64
	copy(a[:], args)
	r := t.Regs
	setSyscallRegs(&r, t.site, nr, a)
	if err := unix.PtraceSetRegs(t.Pid, &r); err != nil {
		return 0, ptraceErr("ptrace(PTRACE_SETREGS)", t.Pid, err)
	}
	for {
		if err := unix.PtraceSingleStep(t.Pid); err != nil {
			return 0, ptraceErr("ptrace(PTRACE_SINGLESTEP)", t.Pid, err)
		}
		ws, err := t.wait()
		if err != nil {
			return 0, err
		}
		if t.state == dead {
			return 0, fmt.Errorf("%s: pid %d died (status %#x): %w", name, t.Pid, uint32(ws), os.ErrProcessDone)
		}
		if ws.StopSignal() == syscall.SIGTRAP && ws>>16 == 0 {
			break
		}
		// Another signal arrived: keep it for the program (a seized
		// tracee's PTRACE_EVENT_STOP carries none). If the call was
		// interrupted the kernel has rewound it; step again.
		if ws>>16 == 0 {
			t.Pending = append(t.Pending, ws.StopSignal())
		}
		if err := unix.PtraceGetRegs(t.Pid, &r); err != nil {
			return 0, ptraceErr("ptrace(PTRACE_GETREGS)", t.Pid, err)
		}
		if r.Rip == t.site+2 {
			break
		}
	}
	if err := unix.PtraceGetRegs(t.Pid, &r); err != nil {
		return 0, ptraceErr("ptrace(PTRACE_GETREGS)", t.Pid, err)
	}
	ret := syscallResult(&r)
	if e := int64(ret); e < 0 && e >= -4095 {
		return ret, os.NewSyscallError(name, fmt.Errorf("pid %d: %w", t.Pid, unix.Errno(-e)))
	}
	return ret, nil
}

// WriteMem stores b at addr through /proc/PID/mem, which writes whatever
// the protection of the pages (as the kernel's own exec writes do).
func (t *Tracee) WriteMem(addr uint64, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if addr > 1<<63-1 {
		return ptraceErr("pwrite(/proc/PID/mem)", t.Pid, unix.EFAULT)
	}
	if _, err := t.mem.WriteAt(b, int64(addr)); err != nil {
		return ptraceErr("pwrite(/proc/PID/mem)", t.Pid, fmt.Errorf("%d bytes at %#x: %w", len(b), addr, unwrapPathErr(err)))
	}
	return nil
}

// ReadMem reads len(b) bytes at addr.
func (t *Tracee) ReadMem(addr uint64, b []byte) error {
	if addr > 1<<63-1 {
		return ptraceErr("pread(/proc/PID/mem)", t.Pid, unix.EFAULT)
	}
	if _, err := t.mem.ReadAt(b, int64(addr)); err != nil {
		return ptraceErr("pread(/proc/PID/mem)", t.Pid, fmt.Errorf("%d bytes at %#x: %w", len(b), addr, unwrapPathErr(err)))
	}
	return nil
}

func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// SetRegs sets the tracee's registers.
func (t *Tracee) SetRegs(r *unix.PtraceRegs) error {
	if err := unix.PtraceSetRegs(t.Pid, r); err != nil {
		return ptraceErr("ptrace(PTRACE_SETREGS)", t.Pid, err)
	}
	return nil
}

// Detach lets the tracee run on its own, delivering the first pending
// signal if any.
func (t *Tracee) Detach() error {
	if t.state != stopped {
		return fmt.Errorf("detach: pid %d: %w", t.Pid, os.ErrProcessDone)
	}
	sig := 0
	if len(t.Pending) > 0 {
		sig = int(t.Pending[0])
	}
	if _, _, e := unix.RawSyscall6(unix.SYS_PTRACE, unix.PTRACE_DETACH, uintptr(t.Pid), 0, uintptr(sig), 0, 0); e != 0 {
		return ptraceErr("ptrace(PTRACE_DETACH)", t.Pid, e)
	}
	t.state = detached
	t.closeMem()
	return nil
}

func (t *Tracee) closeMem() {
	if t.mem != nil {
		t.mem.Close()
		t.mem = nil
	}
}

// Kill kills the tracee with SIGKILL and reaps it.
func (t *Tracee) Kill() {
	t.closeMem()
	if t.state == dead {
		return
	}
	unix.Kill(t.Pid, unix.SIGKILL)
	for t.state != dead {
		if _, err := t.wait(); err != nil {
			return
		}
	}
}

// Crash ends the tracee with sig the way a fatal fault would (Linux kills
// a process with SIGSEGV when an exec fails past the point of no return):
// the signal is delivered on resuming from the current stop, so that the
// process dies of it and its status says so. It returns that status.
func (t *Tracee) Crash(sig syscall.Signal) unix.WaitStatus {
	t.closeMem()
	var last unix.WaitStatus
	if t.state == stopped {
		if err := unix.PtraceCont(t.Pid, int(sig)); err == nil {
			for t.state != dead {
				ws, err := t.wait()
				if err != nil {
					break
				}
				last = ws
				if t.state != dead {
					// Some other stop: insist.
					if unix.PtraceCont(t.Pid, int(sig)) != nil {
						break
					}
				}
			}
		}
	}
	if t.state != dead {
		t.Kill()
	}
	return last
}

// Adopt returns a Tracee for pid, a process that the calling thread
// already traces and that is in a ptrace-stop (a process tree tracer adopts
// the children the kernel attached to it). Regs become the template for
// injected calls. Unlike a started Tracee, an adopted one is not waited
// for by anyone else: its stops come back through the methods here, and
// Status says how it ended if it died meanwhile.
//
// Preconditions: the calling goroutine is the locked thread that traces
// pid.
func Adopt(pid int) (*Tracee, error) {
	t := &Tracee{Pid: pid}
	if err := unix.PtraceGetRegs(pid, &t.Regs); err != nil {
		return nil, ptraceErr("ptrace(PTRACE_GETREGS)", pid, err)
	}
	var err error
	t.mem, err = os.OpenFile(fmt.Sprintf("/proc/%d/mem", pid), os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// Dead reports whether the tracee has been reaped by one of the methods,
// and with which status.
func (t *Tracee) Dead() (unix.WaitStatus, bool) { return t.status, t.state == dead }

// Cont resumes the tracee with PTRACE_CONT, delivering the first pending
// signal, and forgets it: the caller's own wait loop sees its next stop.
// The other pending signals are queued to it again.
func (t *Tracee) Cont() error {
	if t.state != stopped {
		return fmt.Errorf("cont: pid %d: %w", t.Pid, os.ErrProcessDone)
	}
	sig := 0
	if len(t.Pending) > 0 {
		sig = int(t.Pending[0])
		for _, s := range t.Pending[1:] {
			unix.Tgkill(t.Pid, t.Pid, s)
		}
	}
	t.closeMem()
	if err := unix.PtraceCont(t.Pid, sig); err != nil {
		return ptraceErr("ptrace(PTRACE_CONT)", t.Pid, err)
	}
	t.state = detached
	return nil
}

// Close releases the tracee's /proc/PID/mem without resuming it.
func (t *Tracee) Close() { t.closeMem() }
