//go:build linux && amd64

package kernelexec

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// The personality flags Options set (include/uapi/linux/personality.h).
const (
	addrNoRandomize  = 0x0040000
	addrCompatLayout = 0x0200000
)

// personality is personality(2), which x/sys/unix lacks; 0xffffffff
// queries. It applies to the calling thread only.
func personality(p uint32) (uint32, error) {
	r, _, e := unix.RawSyscall(unix.SYS_PERSONALITY, uintptr(p), 0, 0)
	if e != 0 {
		return 0, os.NewSyscallError("personality", e)
	}
	return uint32(r), nil
}

// proc is a child this goroutine started and must reap.
type proc struct {
	pid    int
	mu     sync.Mutex
	pidfd  int
	reaped bool
}

// spawn starts opts.Path; with trace, the child stops at its exec under
// the calling thread's ptrace.
//
// Preconditions: the calling goroutine is locked to its OS thread and
// never unlocks it while the child lives.
func spawn(opts Options, trace bool) (*proc, error) {
	files := opts.Files
	if files == nil {
		null, err := os.Open(os.DevNull)
		if err != nil {
			return nil, err
		}
		defer null.Close()
		files = []uintptr{null.Fd(), null.Fd(), null.Fd()}
	}
	env := opts.Envp
	if env == nil {
		env = []string{}
	}
	pidfd := -1
	sys := &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, PidFD: &pidfd}
	if c := opts.Cred; c != nil {
		sys.Credential = &syscall.Credential{Uid: c.UID, Gid: c.GID, Groups: c.Groups}
	}
	path, argv := opts.Path, opts.Argv
	if len(opts.Rlimits) > 0 {
		l, err := launcher()
		if err != nil {
			return nil, err
		}
		path, argv = l, launcherArgv(l, opts, trace)
		sys.Credential = nil
	} else {
		sys.Ptrace = trace
		if pers := opts.persona(); pers != 0 {
			old, err := personality(0xffffffff)
			if err != nil {
				return nil, err
			}
			if _, err := personality(old | pers); err != nil {
				return nil, err
			}
			defer personality(old)
		}
	}
	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{Dir: opts.Dir, Env: env, Files: files, Sys: sys})
	if err != nil {
		return nil, &os.PathError{Op: "fork/exec", Path: opts.Path, Err: err}
	}
	return &proc{pid: pid, pidfd: pidfd}, nil
}

// persona is the personality flags opts adds to the child's.
func (opts Options) persona() uint32 {
	var pers uint32
	if opts.NoRandom {
		pers |= addrNoRandomize
	}
	if opts.Legacy {
		pers |= addrCompatLayout
	}
	return pers
}

// launcherArgv is the launcher's command line (see launcherSource).
func launcherArgv(l string, opts Options, trace bool) []string {
	pers := opts.persona()
	t := "0"
	if trace {
		t = "1"
	}
	a := []string{l, t, strconv.FormatUint(uint64(pers), 10), strconv.Itoa(len(opts.Rlimits))}
	for _, r := range opts.Rlimits {
		a = append(a, strconv.Itoa(r.Resource), strconv.FormatUint(r.Cur, 10), strconv.FormatUint(r.Max, 10))
	}
	return append(append(a, opts.Path), opts.Argv...)
}

// kill sends SIGKILL unless the child has been reaped; it may run on any
// goroutine.
func (p *proc) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reaped {
		return
	}
	if p.pidfd >= 0 {
		unix.PidfdSendSignal(p.pidfd, unix.SIGKILL, nil, 0)
		return
	}
	unix.Kill(p.pid, unix.SIGKILL)
}

// wait is wait4 on the child, retried on EINTR. A status that ends the
// child marks it reaped.
func (p *proc) wait() (unix.WaitStatus, error) {
	for {
		var ws unix.WaitStatus
		_, err := unix.Wait4(p.pid, &ws, unix.WALL, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return ws, os.NewSyscallError("wait4", fmt.Errorf("pid %d: %w", p.pid, err))
		}
		if ws.Exited() || ws.Signaled() {
			p.mu.Lock()
			p.reaped = true
			p.mu.Unlock()
		}
		return ws, nil
	}
}

// waitExecStop waits for the SIGTRAP a PTRACE_TRACEME child gets after
// its execve.
func (p *proc) waitExecStop() error {
	ws, err := p.wait()
	if err != nil {
		return err
	}
	switch {
	case ws.Stopped() && ws.StopSignal() == unix.SIGTRAP:
		return nil
	case ws.Stopped() && ws.StopSignal() == unix.SIGSEGV:
		// An exec failing after the point of no return: bprm_execve's
		// force_fatal_sig(SIGSEGV), which a tracee reports in a
		// signal-delivery-stop before it dies (measured on 6.18).
		return &KilledError{Pid: p.pid, Signal: unix.SIGSEGV}
	case ws.Stopped():
		return fmt.Errorf("kernelexec: pid %d: stopped by %v before its exec", p.pid, ws.StopSignal())
	case ws.Signaled():
		return &KilledError{Pid: p.pid, Signal: ws.Signal()}
	}
	return launcherExit(p.pid, ws.ExitStatus())
}

// destroy kills and reaps the child and releases its pidfd.
func (p *proc) destroy() {
	p.kill()
	for {
		p.mu.Lock()
		done := p.reaped
		p.mu.Unlock()
		if done {
			break
		}
		if _, err := p.wait(); err != nil {
			// ECHILD: someone else reaped it; nothing is left to wait for.
			p.mu.Lock()
			p.reaped = true
			p.mu.Unlock()
		}
	}
	p.mu.Lock()
	if p.pidfd >= 0 {
		unix.Close(p.pidfd)
		p.pidfd = -1
	}
	p.mu.Unlock()
}

// stoppedAtExec starts opts' exec under ptrace and waits for the stop at
// its exec, ctx bounding the wait; done kills and reaps the process.
func stoppedAtExec(ctx context.Context, opts Options) (p *proc, done func(), err error) {
	if p, err = spawn(opts, true); err != nil {
		return nil, nil, err
	}
	stop := context.AfterFunc(ctx, p.kill)
	done = func() {
		stop()
		p.destroy()
	}
	if err := p.waitExecStop(); err != nil {
		done()
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		return nil, nil, err
	}
	return p, done, nil
}
