//go:build linux && amd64

package linux

import (
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// vforkArgs is vforkRun's argument (vfork_amd64.s).
type vforkArgs struct {
	ops          *vforkOp
	nops         uintptr
	block, saved uint64
	failed       int64
	errno        uintptr
}

// vforkOp is a system call of vforkRun's child.
type vforkOp struct {
	nr      uintptr
	args    [6]uintptr
	mayFail uintptr // nonzero: its failure does not stop the child
}

func vforkRun(x *vforkArgs) (pid uintptr)

// vforkExec starts path with argv and no environment in a child that
// gets dir as its working directory (unless ""), fds as its descriptors 0,
// 1, ... (^uintptr(0): closed) and, before the exec, the personality
// persona (unless -1) and the soft RLIMIT_NOFILE nofile (unless nil):
// syscall.ForkExec's child with less. It returns as soon as the child is
// cloned; whether the child's steps up to its exec succeeded is known once
// it has exec'd or exited (vforkChild.failure).
//
// What it leaves out is what the stub's exec does or the stub's plan does:
// no exec pipe and no wait for the exec (the child shares this process's
// memory until its exec, and reports a failure there: the caller learns of
// it from the end of the stub's status pipe, which it waits for anyway);
// no reset of the 64 signal handlers (the exec resets the caught ones, and
// every signal stays blocked until then); the signal mask is the plan's
// (env.sigMask), set by the stub. Go's child did the rest the same way: the
// descriptors' two passes, the limit's restore.
func vforkExec(path string, argv []string, dir string, fds []uintptr, persona int, nofile *unix.Rlimit) (*vforkChild, error) {
	path0, err := syscall.BytePtrFromString(path)
	if err != nil {
		return nil, err
	}
	argvp, err := syscall.SlicePtrFromStrings(argv)
	if err != nil {
		return nil, err
	}
	envp, _ := syscall.SlicePtrFromStrings(nil) // on the heap: its address is held as a uintptr
	ops := make([]vforkOp, 0, 2*len(fds)+4)
	op := func(nr uintptr, args ...uintptr) {
		o := vforkOp{nr: nr}
		copy(o.args[:], args)
		ops = append(ops, o)
	}
	var dir0 *byte
	if dir != "" {
		if dir0, err = syscall.BytePtrFromString(dir); err != nil {
			return nil, err
		}
		op(unix.SYS_CHDIR, uintptr(unsafe.Pointer(dir0)))
	}
	if persona >= 0 {
		op(unix.SYS_PERSONALITY, uintptr(persona))
	}
	// The descriptors, as syscall.forkAndExecInChild1 places them: those
	// below their place moved up first, so that the second pass stomps
	// on none it needs later.
	fd := make([]int, len(fds))
	next := len(fds)
	for i, f := range fds {
		fd[i] = int(f)
		if int(f) >= next {
			next = int(f) + 1
		}
	}
	for i := range fd {
		if fd[i] >= 0 && fd[i] < i {
			op(unix.SYS_DUP3, uintptr(fd[i]), uintptr(next), unix.O_CLOEXEC)
			fd[i] = next
			next++
		}
	}
	for i := range fd {
		switch {
		case fd[i] < 0:
			// Its failure (EBADF: nothing there) is no failure:
			// forkAndExecInChild1 ignores it too.
			op(unix.SYS_CLOSE, uintptr(i))
			ops[len(ops)-1].mayFail = 1
		case fd[i] == i:
			op(unix.SYS_FCNTL, uintptr(i), unix.F_SETFD, 0)
		default:
			op(unix.SYS_DUP3, uintptr(fd[i]), uintptr(i), 0)
		}
	}
	if nofile != nil {
		op(unix.SYS_PRLIMIT64, 0, unix.RLIMIT_NOFILE, uintptr(unsafe.Pointer(nofile)), 0)
	}
	op(unix.SYS_EXECVE, uintptr(unsafe.Pointer(path0)), uintptr(unsafe.Pointer(&argvp[0])), uintptr(unsafe.Pointer(&envp[0])))
	c := &vforkChild{x: &vforkArgs{ops: &ops[0], nops: uintptr(len(ops)), block: ^uint64(0), failed: -1},
		ops: ops, dir: dir, path: path, keep: []any{argvp, path0, dir0, envp, nofile}}
	syscall.ForkLock.Lock()
	pid := vforkRun(c.x)
	syscall.ForkLock.Unlock()
	if e := int64(pid); e < 0 && e > -4096 {
		return nil, syscall.Errno(-e)
	}
	c.pid = int(pid)
	return c, nil
}

// vforkChild is a child vforkExec started. Until it has exec'd or exited
// it reads its ops and their strings from this process's memory, which it
// shares: they are held here, and whoever holds the child keeps it until
// then (failure), or kills and reaps it first. (The names say vfork: the
// child is one in all but CLONE_VFORK, the parent's wait.)
type vforkChild struct {
	pid       int
	x         *vforkArgs
	ops       []vforkOp
	dir, path string
	keep      []any // what the ops point to
}

// failure returns the child's step that failed, with its errno (errors.Is
// gives it), having reaped the child; nil if the child got through its
// exec. Only once the child has exec'd or exited: its steps are over.
func (c *vforkChild) failure() error {
	f := atomic.LoadInt64(&c.x.failed)
	if f < 0 {
		return nil
	}
	reap(c.pid)
	step := "the child"
	if f < int64(len(c.ops)) {
		step = vforkStep(c.ops[f], c.dir, c.path)
	}
	return fmt.Errorf("%s: %w", step, syscall.Errno(c.x.errno))
}

// vforkStep names o, one of vforkExec's ops, for its error.
func vforkStep(o vforkOp, dir, path string) string {
	a := o.args
	switch o.nr {
	case unix.SYS_CHDIR:
		return "chdir " + dir
	case unix.SYS_EXECVE:
		return "execve " + path
	case unix.SYS_PERSONALITY:
		return fmt.Sprintf("personality(%#x)", a[0])
	case unix.SYS_DUP3:
		return fmt.Sprintf("dup3(%d, %d)", a[0], a[1])
	case unix.SYS_FCNTL:
		return fmt.Sprintf("fcntl(%d, F_SETFD)", a[0])
	case unix.SYS_PRLIMIT64:
		return "setrlimit(RLIMIT_NOFILE)"
	}
	return fmt.Sprintf("system call %d", o.nr)
}

// childNofile is the soft RLIMIT_NOFILE syscall.ForkExec's child would set
// before its exec: Go's start raises this process's soft limit to the hard
// one less 1 and keeps the original to itself (syscall's
// origRlimitNofile), to give its children. Where the limit is so now, the
// original is learnt once from such a child (nofileProbe). nil: the limit
// stays as it is. ok false: the original is not known, and only
// syscall.ForkExec gives it.
func childNofile() (lim *unix.Rlimit, ok bool) {
	var cur unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &cur); err != nil || cur.Max == 0 || cur.Cur != cur.Max-1 {
		// Not raised by Go's start, or set since (syscall.Setrlimit
		// then drops the original too).
		return nil, true
	}
	orig, err := nofileProbe()
	if err != nil {
		return nil, false
	}
	if orig.Max != cur.Max {
		return nil, true
	}
	return orig, true
}

// nofileProbe reads RLIMIT_NOFILE in a child of syscall.ForkExec, which
// restores the original before it execs: the stub, which waits for its
// plan on a pipe that gets none (killed then).
var nofileProbe = sync.OnceValues(func() (*unix.Rlimit, error) {
	path, err := planStub.path()
	if err != nil {
		return nil, err
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, err
	}
	defer unix.Close(p[1])
	pid, err := syscall.ForkExec(path, []string{stubArgv0, "0"}, &syscall.ProcAttr{Env: []string{}, Files: []uintptr{uintptr(p[0])}})
	unix.Close(p[0])
	if err != nil {
		return nil, err
	}
	var lim unix.Rlimit
	err = unix.Prlimit(pid, unix.RLIMIT_NOFILE, nil, &lim)
	unix.Kill(pid, unix.SIGKILL)
	reap(pid)
	return &lim, err
})

// reap waits for the child pid to end.
func reap(pid int) {
	var ws unix.WaitStatus
	for {
		if _, err := unix.Wait4(pid, &ws, 0, nil); err != unix.EINTR {
			return
		}
	}
}
