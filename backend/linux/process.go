//go:build linux && amd64

package linux

import (
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/uexec/uexec/vm"
)

// Options say how Start runs a plan.
type Options struct {
	// Files become descriptors 0, 1, 2, ... of the new process; a nil
	// entry leaves its number closed. Nil Files means os.Stdin, os.Stdout
	// and os.Stderr.
	Files []*os.File
	// Dir is the new process's working directory; "" keeps this
	// process's.
	Dir string
	// NoRandom starts the process with ADDR_NO_RANDOMIZE in its
	// personality, as the kernel would after setarch -R: the plan's
	// addresses are then reproduced exactly. It must agree with the
	// request the plan was made for.
	NoRandom bool
	// Sys is passed to the fork of the stub (Setsid, Setpgid, Ctty...);
	// Ptrace and Pdeathsig are overridden.
	Sys *syscall.SysProcAttr
	// Rand supplies the AT_RANDOM bytes; nil means crypto/rand.
	Rand io.Reader
	// Logf, when set, receives one line per step of the build.
	Logf func(format string, args ...any)
	// SigMask, when set, is the signal mask the program starts with:
	// the caller's, which a kernel exec keeps. (The stub otherwise starts
	// with this process's mask, where the Go runtime has unblocked the
	// signals it handles.)
	SigMask *uint64
	// Path, Argv and Env are the exec as requested. Where uexec cannot do
	// it exactly and the plan is the kernel's own exec (an ordinary user:
	// /proc/PID/exe could not name the program), the kernel does it with
	// them instead; without Path the plan is always built.
	Path string
	Argv []string
	Env  []string
	// AtEntry, when set, is called with the program stopped at its first
	// instruction, on the thread that traces it, just before it is let
	// go: tests compare what it holds with a kernel exec there. An error
	// kills the program.
	AtEntry func(pid int) error
	// StopAtEntry leaves the program in a plain group stop (state T, not
	// traced) at its first instruction, as NetBSD's PS_STOPEXEC does:
	// a debugger may attach, SIGCONT runs it (stopexec.go).
	StopAtEntry bool
	// Fexecve, when set, says that the exec as requested is fexecve(3)
	// of a descriptor of the new process (one of Files), Path being its
	// /dev/fd name: where the kernel does the exec, the stub calls
	// execveat(FD, "", AT_EMPTY_PATH) as glibc's fexecve does.
	Fexecve *Fexecve
	// KernelExact has the kernel exec the program (after the stub's
	// setup, where it has any) wherever the plan is the kernel's own exec
	// of Path, as a tree does (TreeOptions.KernelExecs, which sets it for
	// the first program): what only the kernel's exec gives is then exact
	// (PF_SUPERPRIV clear, LSM transitions, audit and fanotify exec
	// events, resource counters without the stub's work). A plan that is
	// not (a binfmt rule of uexec's, an emulation root, files veriexec
	// pinned) is built by the stub still.
	KernelExact bool

	// notifySock, when set, gets the listener of the untraced tree's
	// filter, which the stub installs (StartTree).
	notifySock *os.File

	// byName makes the stub open the plan's files by their names, as the
	// tree's callers do (tests).
	byName bool

	// failAt, when positive, replaces op failAt-1 of the stub's program
	// with a system call that fails: tests of every step's failure.
	failAt int
}

// Process is a program started by Start: a plain child of this process.
type Process struct {
	Pid int
	// Notes list what differs from a kernel exec of the same plan and
	// why ("/proc/PID/exe names the stub: ..."); empty when nothing does.
	Notes []string
	// Kernel says why the kernel, not the stub, made the exec as
	// requested (a 32-bit image, /proc/PID/exe, ...); "" when the stub
	// built the image.
	Kernel string
	// Entry and SP are the registers the program started with; VDSO is
	// where its vdso is; Moved maps the planned start of each image that
	// the kernel placed elsewhere to where it went.
	Entry, SP, VDSO vm.Addr
	Moved           map[vm.Addr]vm.Addr

	p *os.Process
	// cloned: the stub forks the program's process and sends its pid over
	// the tree's socket (stubEnv.cloneProgram); Pid is the stub's.
	cloned bool
}

// Wait waits for the process to exit and returns its status (exit code or
// signal, through ProcessState.Sys's syscall.WaitStatus).
func (p *Process) Wait() (*os.ProcessState, error) { return p.p.Wait() }

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) error { return p.p.Signal(sig) }

// Kill kills the process with SIGKILL.
func (p *Process) Kill() error { return p.p.Kill() }

// Error is a failure of Start. Before the point of no return the stub is
// killed and reaped quietly and Signal is 0; after it the half-built
// process is killed with SIGSEGV, as Linux kills a process whose exec fails
// past that point, and Signal says so.
type Error struct {
	Pid    int
	Step   string // what was being done: "mapping the image", ...
	Signal syscall.Signal
	Err    error
}

func (e *Error) Error() string {
	s := fmt.Sprintf("uexec backend: %s: %v", e.Step, e.Err)
	if e.Pid != 0 { // 0: before there was a process
		s = fmt.Sprintf("uexec backend: pid %d: %s: %v", e.Pid, e.Step, e.Err)
	}
	if e.Signal != 0 {
		s += fmt.Sprintf(" (process killed by %v)", e.Signal)
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Fexecve is an exec through descriptor FD of the new process (fexecve,
// execveat with AT_EMPTY_PATH). CloseOnExec: the descriptor is O_CLOEXEC,
// so the program does not keep it (and a #! script through it fails with
// ENOENT before the exec is planned).
type Fexecve struct {
	FD          int
	CloseOnExec bool
}
