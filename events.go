package uexec

import (
	"errors"
	"syscall"
	"time"

	backend "github.com/uexec/uexec/backend/linux"
	"github.com/uexec/uexec/execsw"
)

// ExecEvent is one exec of a process tree (SpawnRequest.OnExec): an exec
// line of `uexec run --log-execs` (README.md, "The exec log").
type ExecEvent struct {
	Time time.Time // when uexec received the exec
	Pid  int       // the caller's thread id (its pid unless a thread exec'd)
	Tgid int       // the caller's process id (Pid unless a thread exec'd); 0 if unknown
	Ppid int
	Cwd  string   // the caller's working directory at the exec
	Path string   // as the caller passed it ("/dev/fd/N[/name]" for execveat by descriptor)
	Argv []string // as the caller passed it
	// Chain is the handler chain of the plan; empty when the exec failed
	// before a handler took it.
	Chain []execsw.Link
	// Err is nil for an exec that succeeded; otherwise it wraps the errno
	// the caller got back or, past the point of no return, why the
	// process was killed with SIGSEGV (errors.Is(err, ErrFatal) or a
	// *StartError).
	Err error
	// By is "uexec" when uexec's engine did the exec, "kernel" when the
	// kernel did; Note says why.
	By   string
	Note string
	// Stopped: the new image waits at its first instruction in a plain
	// stop (SpawnRequest.StopAtEntry, StopAtExec); SIGCONT runs it.
	Stopped bool
	// Check: an execveat with AT_EXECVE_CHECK, which execs nothing.
	Check bool
}

// ExitEvent is the end of a process of a tree (SpawnRequest.OnExit): an
// exit line of the exec log, with the image of its last exec.
type ExitEvent struct {
	Time   time.Time // when uexec saw it reaped by its parent
	Pid    int
	Status syscall.WaitStatus
	// Planned is whether its last image is one uexec planned; only then
	// are Path, Comm, Program and UID set.
	Planned bool
	Path    string      // the program as its exec resolved it
	Comm    string      // its comm at the exec
	Program execsw.Attr // the file the exec named (execsw.Plan.Program)
	UID     uint32      // the real uid of the exec
}

func execEventOf(ev *backend.ExecEvent) ExecEvent {
	return ExecEvent{Time: ev.Time, Pid: ev.Pid, Tgid: ev.Tgid, Ppid: ev.Ppid, Cwd: ev.Cwd, Path: ev.Path, Argv: ev.Argv,
		Chain: ev.Chain, Err: startError(ev.Err), By: ev.By, Note: ev.Note, Stopped: ev.Stopped, Check: ev.Check}
}

func exitEventOf(ev *backend.ExitEvent) ExitEvent {
	return ExitEvent{Time: ev.Time, Pid: ev.Pid, Status: syscall.WaitStatus(ev.Status), Planned: ev.Planned,
		Path: ev.Path, Comm: ev.Comm, Program: ev.Program, UID: ev.UID}
}

// StartError is a failure of the backend while it started a program:
// before the point of no return (Signal 0; nothing runs) or after it (the
// process was killed with Signal, SIGSEGV as Linux does).
type StartError struct {
	Pid    int
	Step   string // what was being done: "mapping the image", ...
	Signal syscall.Signal
	Err    error
}

func (e *StartError) Error() string {
	return (&backend.Error{Pid: e.Pid, Step: e.Step, Signal: e.Signal, Err: e.Err}).Error()
}

func (e *StartError) Unwrap() error { return e.Err }

// startError turns the backend's *Error into a *StartError; other errors
// are returned as they are.
func startError(err error) error {
	var be *backend.Error
	if errors.As(err, &be) && err == error(be) {
		return &StartError{Pid: be.Pid, Step: be.Step, Signal: be.Signal, Err: be.Err}
	}
	return err
}

// HelperArg is the argument that makes a program the helper of
// SpawnRequest.Helper: its main calls ServeHelper first.
const HelperArg = "__serve-kernel-execs"

// ServeHelper runs the helper a tree started with NoWaitDescendants hands
// the remaining processes to, when args (os.Args[1:]) ask for it: it lets
// the kernel do their later execs. It returns the helper's exit status
// and true, or false when args are not the helper's.
//
//	func main() {
//		if code, ok := uexec.ServeHelper(os.Args[1:]); ok {
//			os.Exit(code)
//		}
//		...
func ServeHelper(args []string) (int, bool) {
	if len(args) == 2 && args[0] == HelperArg && args[1] == "notify" {
		return backend.ServeNotify(), true
	}
	return 0, false
}
