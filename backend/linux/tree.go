//go:build linux && amd64

package linux

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/execsw"
	"github.com/uexec/uexec/vm"
)

// TreeOptions say how StartTree serves the execs of a process tree.
type TreeOptions struct {
	// Switch plans every exec of the tree; required.
	Switch *execsw.Switch
	// OnExec, when set, is called for every exec of the tree after the
	// first (the caller logs the first itself, or passes it as First), on
	// the serving thread: it must not block.
	OnExec func(*ExecEvent)
	// LateExecEvents lets OnExec be called after the caller was answered
	// where the kernel does every exec (kernelExecs): the caller does not
	// wait for the plan, made for OnExec alone.
	LateExecEvents bool
	// First, when set, is the first program's exec: the tree passes it to
	// OnExec, with Pid set, before any other event, so that a log of
	// OnExec and OnExit is in order.
	First *ExecEvent
	// NoWaitDescendants ends the serving when the first program exits:
	// descendants still alive continue, and their later execs are the
	// kernel's (Helper). Otherwise the tree is served until every process
	// that has the filter is gone.
	NoWaitDescendants bool
	// Logf, when set, receives one line per step of every build.
	Logf func(format string, args ...any)
	// EmulRoot is the emulation root of every exec of the tree
	// (execsw.Request.EmulRoot); "" for none. An exec that the kernel
	// would do where the plan finds a file under it is refused instead
	// (the kernel would not see the root).
	EmulRoot string
	// Helper is the argv of a program that runs ServeNotify when given
	// the further argument "notify": with NoWaitDescendants it gets the
	// listener and lets the kernel do every later exec. Without it an exec
	// of a remaining process fails with ENOSYS (the seccomp filter stays,
	// with no listener).
	Helper []string
	// StopAtExec, when set, says which execs of the tree stop at their
	// entry (PS_STOPEXEC, tree_stopexec.go): it gets the path as passed
	// and the program file it names (absolute, symlinks resolved; "" when
	// unknown). Stopped execs have ExecEvent.Stopped.
	StopAtExec func(path, resolved string) bool
	// OnExit, when set, is called for each process of the tree that ends
	// (once reaped by its parent) after an exec uexec saw (or refused),
	// with the image of its last exec (ExitEvent.Planned), on the serving
	// thread, after every OnExec of the process: it must not block. It
	// reports only while uexec serves the tree (not for processes released
	// by NoWaitDescendants). See exitwatch.go.
	OnExit func(*ExitEvent)
	// KernelExecs lets the kernel do every exec of the tree whose plan is
	// its own exec (kernelExecs: no binfmt rule, emulation root, policy or
	// StopAtExec of uexec's), the first program's too, as in a tree
	// whose uexec may not set /proc/PID/exe: only the kernel's exec is
	// exact (PF_SUPERPRIV, resource counters, LSM transitions and audit
	// are its own), and it costs a notification and an answer. Without
	// it uexec's stub builds every exec it can make exact but for those.
	KernelExecs bool
	// OnFirstStop, when set, is called when the first program (this
	// process's child) stops for job control, with the signal that
	// stopped it, on the serving thread: a supervisor that stands in for
	// it with its own parent stops itself so (a shell waits for the
	// supervisor, not for the program).
	OnFirstStop func(pid int, sig syscall.Signal)
}

// ExecEvent is one exec of the tree, as --log-execs reports it.
type ExecEvent struct {
	Time time.Time
	Pid  int // the caller's thread id (its pid unless a thread exec'd)
	Tgid int // the caller's process id (Pid unless a thread exec'd); 0 if unknown
	Ppid int
	Cwd  string   // the caller's working directory at the exec
	Path string   // as the caller passed it ("/dev/fd/N[/name]" for execveat by descriptor)
	Argv []string // as the caller passed it
	// Chain is the handler chain of the plan: which format matched which
	// file; empty when the exec failed before a handler took it.
	Chain []execsw.Link
	// Err is nil for an exec that succeeded; otherwise it wraps the errno
	// the caller got back, or, past the point of no return, why the
	// process was killed with SIGSEGV.
	Err error
	// By is "uexec" when uexec's engine did the exec, "kernel" when the
	// kernel did (Note says why).
	By   string
	Note string
	// Stopped: the new image waits at its first instruction in a group
	// stop (TreeOptions.StopAtExec).
	Stopped bool
	// Check: an execveat with AT_EXECVE_CHECK, which checks and execs
	// nothing (the kernel's answer).
	Check bool
}

// Tree is a process tree whose execs are done by uexec's engine: the first
// program, started by StartTree, and every descendant it starts.
//
// The first program's stub installs a seccomp filter that every descendant
// inherits and that notifies this process of each execve and execveat; one
// locked OS thread answers them (notify.go). Nothing else of the tree goes
// through uexec: forks, exits, signals and waits are the kernel's. See the
// package documentation, "Process trees".
type Tree struct {
	// Pid is the first program's.
	Pid int
	// Notes and Kernel are the first program's (see Process).
	Notes  []string
	Kernel string

	opts      TreeOptions
	self      int
	firstDone chan struct{}
	firstWS   unix.WaitStatus
	firstGone bool
	done      chan struct{}
	err       error
	exits     *exitWatch // with OnExit
	// exeless: this process may not set /proc/PID/exe (kernelExecs).
	exeless bool
	// allNote says why the kernel does every exec (kernelExecs).
	allNote string
	// firstAtEntry: the first program was left stopped at an exec's
	// entry (StopAtExec), a stop firstStopped has not seen yet.
	firstAtEntry bool
	// release wakes the serving thread for Release (an eventfd), which
	// sets released.
	release  int
	released atomic.Bool
	// spare is the next redirect's copy of the stub (readyPlanFile).
	spare *planFile
	// selfCred is this process's credentials (nil: unknown), against
	// which a caller's walk is checked (Request.SearchAsSelf).
	selfCred *execsw.Cred
	// refused holds, by caller, the call whose stub the kernel refused,
	// given back to it (the serving thread's alone).
	refused map[uint32]refusedCall
}

// StartTree runs plan as Start does, and serves the execs of the program and
// of every process it starts: each is planned with topts.Switch from the
// caller's state and built by the plan stub in the caller. The first
// program is a child of this process; Wait returns its status.
func StartTree(plan *execsw.Plan, opts *Options, topts *TreeOptions) (*Tree, error) {
	if topts == nil || topts.Switch == nil {
		return nil, errors.New("uexec backend: StartTree needs a switch")
	}
	if opts == nil {
		opts = &Options{}
	}
	if err := runnable(plan, opts.Path != "" && plan.Extended == ""); err != nil {
		return nil, err
	}
	return startNotifyTree(plan, opts, topts)
}

// FirstExited is closed when the first program has exited.
func (tr *Tree) FirstExited() <-chan struct{} { return tr.firstDone }

// Wait waits for the first program to exit and returns its status.
func (tr *Tree) Wait() syscall.WaitStatus {
	<-tr.firstDone
	return syscall.WaitStatus(tr.firstWS)
}

// Done is closed when the serving is finished: every process of the tree is gone, or,
// with NoWaitDescendants, the first program is and the others are
// released.
func (tr *Tree) Done() <-chan struct{} { return tr.done }

// Err returns what ended the serving abnormally, once Done is closed.
func (tr *Tree) Err() error { return tr.err }

// Signal sends sig to the first program while it runs.
func (tr *Tree) Signal(sig syscall.Signal) error {
	select {
	case <-tr.firstDone:
		return os.ErrProcessDone
	default:
	}
	return unix.Kill(tr.Pid, sig)
}

// TreeNoNewPrivs reports whether a tree this process starts runs under
// no_new_privs: its first stub installs the seccomp filter, which needs
// no_new_privs without CAP_SYS_ADMIN; the set-id bits and file capabilities
// of every exec of the tree are then ignored, as the kernel ignores them.
func TreeNoNewPrivs() bool { return !selfHasCap(unix.CAP_SYS_ADMIN) }

func selfHasCap(c uint) bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			m, _ := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return m&(1<<c) != 0
		}
	}
	return false
}

func (tr *Tree) logf(format string, args ...any) {
	if tr.opts.Logf != nil {
		tr.opts.Logf(format, args...)
	}
}

func (tr *Tree) emit(ev *ExecEvent) {
	if tr.opts.OnExec != nil {
		if ev.Cwd == "" {
			// The caller still waits in its exec (or runs its new
			// image, which has the same cwd).
			ev.Cwd, _ = os.Readlink("/proc/" + strconv.Itoa(ev.Pid) + "/cwd")
		}
		tr.opts.OnExec(ev)
	}
}

// isEventStop reports whether ws is a PTRACE_EVENT_STOP of a seized
// tracee: a group-stop (with the stop signal) or another trap (SIGTRAP).
func isEventStop(ws unix.WaitStatus) bool {
	return ws.Stopped() && uint32(ws)>>16 == unix.PTRACE_EVENT_STOP
}

// errnoOf returns the errno err wraps, or 0.
func errnoOf(err error) unix.Errno {
	var e unix.Errno
	if errors.As(err, &e) {
		return e
	}
	return 0
}

// Limits of execve's path (include/uapi/linux/limits.h).
const pathMax = 4096

func isOpenErrno(e unix.Errno) bool {
	switch e {
	case unix.ENOENT, unix.ENOTDIR, unix.ELOOP, unix.EACCES, unix.ENAMETOOLONG, unix.EBADF, unix.ETXTBSY, unix.EINVAL, unix.ENXIO, unix.EPERM:
		return true
	}
	return false
}

// request builds the Request of an exec by c: execve, or execveat with
// dirfd and flags. self, when not "", is the path with the caller's
// /proc/self replaced by its pid.
func execRequest(c *caller, dirfd int, path string, flags uint64, argv, envp []string) (req *execsw.Request, self string, err error) {
	if flags&^uint64(unix.AT_SYMLINK_NOFOLLOW|unix.AT_EMPTY_PATH) != 0 {
		return nil, "", fmt.Errorf("execveat flags %#x: %w", flags, unix.EINVAL)
	}
	if path == "" && flags&unix.AT_EMPTY_PATH == 0 {
		return nil, "", fmt.Errorf("empty path: %w", unix.ENOENT)
	}
	nofollow := flags&unix.AT_SYMLINK_NOFOLLOW != 0
	var file *os.File
	var cloexec bool
	name := path
	switch {
	case path == "" && dirfd == unix.AT_FDCWD:
		return nil, "", fmt.Errorf("AT_EMPTY_PATH on the working directory: %w", unix.EACCES)
	case path == "":
		file, cloexec, err = c.openFD(dirfd)
		if err != nil {
			return nil, "", fmt.Errorf("descriptor %d: %w", dirfd, err)
		}
		name = "/dev/fd/" + strconv.Itoa(dirfd)
	case path[0] != '/' && dirfd != unix.AT_FDCWD:
		file, err = c.openAt(dirfd, path, nofollow)
		if err != nil {
			return nil, "", fmt.Errorf("%s relative to descriptor %d: %w", path, dirfd, err)
		}
		if _, cloexec, err = c.openFD(dirfd); err != nil {
			file.Close()
			return nil, "", err
		}
		name = "/dev/fd/" + strconv.Itoa(dirfd) + "/" + path
	default:
		if s := c.selfPath(path); s != path {
			self, name = s, s
		}
	}
	req, err = c.request(name, argv, envp)
	if err != nil {
		if file != nil {
			file.Close()
		}
		return nil, "", err
	}
	req.File, req.CloseOnExec, req.NoFollow = file, cloexec, nofollow
	return req, self, nil
}

// stubArgv0 is the stub's argv[0] while it runs.
const stubArgv0 = "uexec-stub"

// statSize is sizeof(struct stat) on x86-64.
const statSize = 144

// maxByName bounds the names that openByName writes below the stub's
// stack pointer.
const maxByName = 2048

// planFileList returns the distinct files of plan, in order.
func planFileList(plan *execsw.Plan) []*vm.File {
	var out []*vm.File
	seen := map[*vm.File]bool{}
	for _, f := range plan.Files {
		if f != nil && !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	for _, c := range plan.Cmds {
		if c.File != nil && !seen[c.File] {
			seen[c.File] = true
			out = append(out, c.File)
		}
	}
	return out
}

// atFDCWD is AT_FDCWD as a register value.
var atFDCWD = func() uint64 { v := int64(unix.AT_FDCWD); return uint64(v) }()
