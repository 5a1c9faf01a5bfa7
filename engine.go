package uexec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	backend "github.com/uexec/uexec/backend/linux"
	"github.com/uexec/uexec/execsw"
	"github.com/uexec/uexec/format/binfmt"
	"github.com/uexec/uexec/segvguard"
)

// ErrFatal marks an exec that Linux kills after the point of no return
// (with SIGSEGV): Spawn's error then wraps it.
var ErrFatal = execsw.ErrFatal

// Engine starts programs with uexec's exec engine instead of the kernel's
// loader: a drop-in for os/exec where the exec must be uexec's.
//
// Its methods may be called from several goroutines at once, and binfmt
// rules registered at any time. Set Switch and call Segvguard before its
// first Spawn: like the switch's policies, a policy added while execs are
// planned is not safe.
type Engine struct {
	// Switch is the exec switch used to plan every exec; NewEngine
	// fills it with NewSwitch, and a zero Engine's first use does.
	Switch *execsw.Switch

	mu    sync.Mutex                      // makes the zero Engine's Switch and the guard once
	guard atomic.Pointer[segvguard.Guard] // Segvguard's
}

// Segvguard returns the engine's PaX Segvguard (package segvguard),
// adding one with cfg to its switch's policies on the first call (cfg is
// ignored afterwards); call it before the engine's first Spawn. The engine
// then reports to it every death by a core-dumping signal of the programs
// it spawns (with Tree, of every process of the tree), so that a program
// that crashed cfg.MaxCrashes times within cfg.Expiry is refused with
// EPERM for cfg.Suspend: Spawn's error, or the errno of a tree's execve.
func (e *Engine) Segvguard(cfg segvguard.Config) *segvguard.Guard {
	e.mu.Lock()
	defer e.mu.Unlock()
	if g := e.guard.Load(); g != nil {
		return g
	}
	g := segvguard.New(cfg)
	sw := e.swLocked()
	sw.Policies = append(sw.Policies, g)
	e.guard.Store(g)
	return g
}

// crashed reports a death to the guard, if any.
func (e *Engine) crashed(ws syscall.WaitStatus, prog execsw.Attr, uid uint32, comm string) {
	if g := e.guard.Load(); g != nil && ws.Signaled() {
		g.Crashed(segvguard.Crash{Dev: prog.Dev, Ino: prog.Ino, UID: uid, Name: comm, Signal: ws.Signal()})
	}
}

// NewEngine returns an engine with the native handlers.
func NewEngine() *Engine { return &Engine{Switch: NewSwitch()} }

// Binfmt returns the engine's binfmt_misc entry, adding an empty one to
// its switch, before the native handlers, on the first call. Rules
// registered on it apply to every exec the engine plans:
//
//	r, err := binfmt.Parse(`:qemu-aarch64:M::\x7fELF\x02...::/usr/bin/qemu-aarch64-static:OCF`)
//	...
//	err = e.Binfmt().Register(r)
func (e *Engine) Binfmt() *binfmt.Misc {
	e.mu.Lock()
	defer e.mu.Unlock()
	sw := e.swLocked()
	for _, f := range sw.Entries() {
		if m, ok := f.(*binfmt.Misc); ok {
			return m
		}
	}
	m := &binfmt.Misc{}
	// The entry is new: Add cannot refuse it.
	_ = sw.Add(m, execsw.PrioFirst)
	return m
}

// SpawnRequest describes a program to start.
type SpawnRequest struct {
	// The three are execve's, as os.StartProcess passes them (not
	// exec.Cmd): Argv and Env exactly as given, with no duplicate
	// removed (an empty Argv gives the kernel's argc 1 and argv[0] "").
	Path string   // the file to execute; no PATH search
	Argv []string // argv, argv[0] included
	Env  []string // the environment; nil means an empty one
	// Dir is the working directory ("" means this process's). A bad
	// one fails with chdir's error (an *os.PathError "chdir DIR")
	// before any of the exec's, as the child's chdir comes first.
	Dir string
	// Files become descriptors 0, 1, 2, ...; nil means os.Stdin,
	// os.Stdout and os.Stderr. A nil file leaves its number closed, and
	// so do 0, 1 and 2 past a shorter list, as with os.StartProcess; a
	// Path through /dev/fd/N or /proc/self/fd/N names Files[N]
	// (ChildName).
	Files []*os.File
	// NoRandom runs the program without address randomisation
	// (ADDR_NO_RANDOMIZE), like setarch -R.
	NoRandom bool
	// EmulRoot is an emulation root (NetBSD's TRYEMULROOT): absolute
	// names of the program and its interpreters are looked up under
	// this directory first and in / when absent there. It must be an
	// absolute path without symlinks; "" means none. Without Tree it
	// applies to this exec only (the program's own execs are the
	// kernel's); with Tree to every exec of the tree.
	EmulRoot string
	// SigMask is the signal mask the program starts with; nil means the
	// calling thread's.
	SigMask *uint64
	// Logf, when set, receives one line per step of each build.
	Logf func(format string, args ...any)
	// BeforeExec, with ExecInPlace, is called once just before the exec
	// that replaces this process, with why the kernel makes the exec as
	// requested ("" when uexec's stub builds the image): the last moment
	// to log it.
	BeforeExec func(kernel string)

	// Tree makes uexec the exec subsystem of the program's whole process
	// tree, as `uexec run` is: every execve and execveat of the program
	// and its descendants reaches the engine through a seccomp filter
	// (seccomp user notification; the tree is not traced) and is planned
	// with the engine's switch and the caller's own state. It needs
	// ptrace (this process must not be traced itself). The thread of
	// this process that serves the tree runs at nice -10 where this
	// process may raise its priority, with a 0.1 ms time slice, so that a
	// caller it wakes does not preempt it (README.md, Benchmarks). See
	// README.md, "Every exec of the tree".
	Tree bool
	// Build, with Tree, has uexec's stub build every exec of the tree
	// that it can make exact (where it may set /proc/PID/exe: CAP_SYS_ADMIN
	// or CAP_CHECKPOINT_RESTORE). Without it the kernel does every exec
	// whose plan is its own exec while no binfmt rule, emulation root,
	// policy or StopAtExec is in the tree: only the kernel's exec is
	// exact (PF_SUPERPRIV, resource counters, LSM and audit), and it is
	// faster. See README.md, "Who builds an exec".
	Build bool
	// ByKernel, without Tree, has the kernel make the exec wherever its
	// plan is the kernel's own exec (no binfmt rule of the switch's, no
	// emulation root, no file pinned by veriexec took part), as a tree
	// does without Build: uexec still plans it (its checks, policies and
	// errors are the plan's), and the exec is then exact in what only
	// the kernel's exec gives (PF_SUPERPRIV clear, LSM transitions, audit
	// and fanotify exec events, resource counters without the stub's
	// work). Process.Kernel says so (with ExecInPlace, BeforeExec's
	// argument). Without it root's Spawn and ExecInPlace load such a plan
	// with uexec's stub too; an ordinary user's is the kernel's either
	// way. Not with StopAtEntry, whose stop is uexec's to make. See
	// README.md, "Who builds an exec".
	ByKernel bool
	// OnExec, with Tree, receives every exec of the tree, the first
	// program's first, on the serving thread: it must not block.
	OnExec func(ExecEvent)
	// LateExecEvents lets OnExec receive an exec after its caller has
	// been answered, where the kernel does every exec of the tree
	// (without Build, binfmt rules, emulation root, policies or
	// StopAtExec): the caller then does not wait for the exec to be
	// planned, and its event may come after the new program's first
	// output. Without it every event precedes the exec it reports.
	LateExecEvents bool
	// OnExit, with Tree, receives the end of each process of the tree
	// that made an exec, after its execs, on the serving thread: it must
	// not block.
	OnExit func(ExitEvent)
	// NoWaitDescendants, with Tree, stops serving the tree when the first
	// program has exited: the descendants still alive continue, their
	// later execs done by the kernel through Helper.
	NoWaitDescendants bool
	// Helper is the argv of a program that calls ServeHelper with the
	// argument HelperArg (this program, usually: os.Executable and
	// HelperArg). Without it the later execs of processes left by
	// NoWaitDescendants fail with ENOSYS.
	Helper []string

	// StopAtEntry leaves the program stopped at its first instruction in
	// a plain stop (state T, not traced: NetBSD's PS_STOPEXEC), for a
	// debugger to attach; SIGCONT runs it. See README.md, "Stop at entry".
	StopAtEntry bool
	// StopAtExec, with Tree, stops each exec of the tree it accepts the
	// same way: it gets the path as passed and the program file it names
	// (absolute, symlinks resolved; "" when unknown).
	StopAtExec func(path, resolved string) bool
	// OnFirstStop, with Tree, is called when the program (this process's
	// child) stops for job control, with the signal that stopped it, on
	// the serving thread: a supervisor that stands in for the program with
	// its own parent stops itself so, as `uexec run` does.
	OnFirstStop func(pid int, sig syscall.Signal)
	// Image, when set, is the program itself (an ELF or a #! script),
	// read to its end and exec'd as fexecve(3) of a sealed memfd named
	// ImageName ("image" when empty) would: Path is then ignored, and
	// AT_EXECFN, comm and /proc/PID/exe are the kernel's for that memfd
	// (see Image). Spawn only; Plan and SpawnPlan take Memfd.
	Image     io.Reader
	ImageName string
	// Memfd is an image made with NewImage: Plan plans its fexecve,
	// SpawnPlan gives the program its descriptor.
	Memfd *Image
}

// Process is a program started by Spawn.
type Process struct {
	Pid int
	// Notes say what the program could observe that differs from a
	// kernel exec, and why.
	Notes []string
	// Kernel says why the kernel, not uexec's stub, made the program's
	// exec as requested (a 32-bit image; an ordinary user, for whom only
	// the kernel's exec makes /proc/PID/exe the program's; ByKernel); ""
	// when the stub built the image.
	Kernel string

	p  *backend.Process
	tr *backend.Tree
	// reap waits for a started program, once; it runs on the goroutine
	// of Wait, or on a goroutine of its own once something else waits
	// (Exited, a context, a Segvguard): a goroutine per program would
	// cost every Spawn and Wait two hand-offs.
	reap      func()
	reapAsync sync.Once
	st        *os.ProcessState
	err       error
	exited    chan struct{}
	done      chan struct{}
}

// Spawn plans the exec of s with this process's credentials, limits and
// personality, and starts it. An exec the kernel would refuse returns an
// error wrapping the same errno (errors.Is(err, unix.ENOENT)) and starts
// nothing. When ctx is done before the program exits, the program is
// killed, as exec.CommandContext does; when it is done already, nothing is
// started and its error returned.
func (e *Engine) Spawn(ctx context.Context, s *SpawnRequest) (*Process, error) {
	if ctx == nil {
		panic("uexec: Spawn with a nil Context")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s != nil && s.Image != nil {
		files := s.Files
		if files == nil {
			files = []*os.File{os.Stdin, os.Stdout, os.Stderr}
		}
		name := s.ImageName
		if name == "" {
			name = "image"
		}
		im, err := NewImage(s.Image, name, len(files))
		if err != nil {
			return nil, err
		}
		defer im.Close() // the program has its own copy
		s2 := *s
		s2.Image, s2.Memfd, s2.Files = nil, im, files
		s = &s2
	}
	plan, noRandom, err := e.plan(s)
	if err != nil {
		return nil, err
	}
	defer plan.Close()
	return e.spawnPlan(ctx, plan, s, noRandom)
}

// Plan plans the exec of s as Spawn does, without starting anything. The
// caller closes the plan.
func (e *Engine) Plan(s *SpawnRequest) (*execsw.Plan, error) {
	plan, _, err := e.plan(s)
	return plan, err
}

// plan is Plan, and says whether the exec is laid out without
// randomisation (the request's NoRandom).
func (e *Engine) plan(s *SpawnRequest) (*execsw.Plan, bool, error) {
	if s == nil || s.Path == "" && len(s.Argv) == 0 && s.Memfd == nil {
		return nil, false, errors.New("uexec: Spawn needs a path")
	}
	if s.EmulRoot != "" && !filepath.IsAbs(s.EmulRoot) {
		return nil, false, fmt.Errorf("uexec: SpawnRequest.EmulRoot %q is not an absolute path", s.EmulRoot)
	}
	if s.Dir != "" {
		// The child changes directory before its exec: a bad Dir's
		// error comes first, whatever the exec's would be.
		if err := checkChdir(s.Dir); err != nil {
			return nil, false, err
		}
	}
	req, err := SelfRequest(s.Path, s.Argv, s.Env)
	if err != nil {
		return nil, false, err
	}
	if s.Dir != "" {
		req.Dir = s.Dir
	}
	if s.NoRandom {
		req.NoRandom = true
	}
	req.EmulRoot = s.EmulRoot
	host := s.Path
	if s.Memfd != nil {
		s.Memfd.Request(req)
	} else if host, err = ChildName(s.Path, s.Files, s.Dir); err != nil {
		return nil, false, err
	} else {
		req.Path = host
	}
	plan, err := e.sw().Execve(req)
	if plan == nil {
		// An execute-only program: the kernel's exec, or its errno.
		plan, err = e.sw().KernelOnlyPlan(req, err)
	}
	if plan != nil && s.Memfd == nil && host != s.Path {
		plan.Renamed(host, s.Path)
	}
	return plan, req.NoRandom, err
}

func (e *Engine) sw() *execsw.Switch {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.swLocked()
}

// swLocked is sw, e.mu held.
func (e *Engine) swLocked() *execsw.Switch {
	if e.Switch == nil {
		e.Switch = NewSwitch()
	}
	return e.Switch
}

// SpawnPlan starts plan, an exec this engine's switch planned (Plan, or
// Switch.Execve of a request of this process's), with the options of s:
// s.Path, s.Argv and s.Env are the exec as requested, which the backend
// hands to the kernel where the kernel's exec is the plan and only it is
// exact. The caller keeps plan and closes it.
func (e *Engine) SpawnPlan(ctx context.Context, plan *execsw.Plan, s *SpawnRequest) (*Process, error) {
	if ctx == nil {
		panic("uexec: SpawnPlan with a nil Context")
	}
	return e.spawnPlan(ctx, plan, s, s.NoRandom || !Randomized())
}

// spawnPlan is SpawnPlan, noRandom the request's NoRandom as planned.
func (e *Engine) spawnPlan(ctx context.Context, plan *execsw.Plan, s *SpawnRequest, noRandom bool) (*Process, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sw := e.sw()
	// No directory is the caller's own: the child inherits it.
	opts := &backend.Options{Files: s.Files, Dir: s.Dir, NoRandom: noRandom,
		Path: s.Path, Argv: s.Argv, Env: s.Env, SigMask: s.SigMask, Logf: s.Logf, StopAtEntry: s.StopAtEntry,
		KernelExact: s.ByKernel && !s.Tree && !s.StopAtEntry}
	if opts.Env == nil {
		opts.Env = []string{}
	}
	if s.Memfd != nil {
		files := s.Files
		if files == nil {
			files = []*os.File{os.Stdin, os.Stdout, os.Stderr}
		}
		opts.Path = s.Memfd.Path
		opts.Files, opts.Fexecve = s.Memfd.Files(files)
	}
	p := &Process{exited: make(chan struct{}), done: make(chan struct{})}
	if s.Tree {
		topts := &backend.TreeOptions{Switch: sw, NoWaitDescendants: s.NoWaitDescendants, EmulRoot: s.EmulRoot,
			Helper: s.Helper, Logf: s.Logf, StopAtExec: s.StopAtExec, OnFirstStop: s.OnFirstStop,
			LateExecEvents: s.LateExecEvents, KernelExecs: !s.Build}
		if s.OnExec != nil {
			topts.OnExec = func(ev *backend.ExecEvent) { s.OnExec(execEventOf(ev)) }
			dir := execsw.DirName(s.Dir)
			if dir == "" {
				dir = execsw.DirName(selfDir())
			}
			topts.First = &backend.ExecEvent{Time: time.Now(), Ppid: os.Getpid(), Cwd: dir, Path: s.Path, Argv: s.Argv,
				Chain: plan.Chain, By: "uexec", Note: plan.Cred.IgnoredNote(), Stopped: s.StopAtEntry}
		}
		if s.OnExit != nil || e.guard.Load() != nil {
			topts.OnExit = func(bev *backend.ExitEvent) {
				ev := exitEventOf(bev)
				if ev.Planned {
					e.crashed(ev.Status, ev.Program, ev.UID, ev.Comm)
				}
				if s.OnExit != nil {
					s.OnExit(ev)
				}
			}
		}
		tr, err := backend.StartTree(plan, opts, topts)
		if err != nil {
			return nil, startError(err)
		}
		p.Pid, p.Notes, p.Kernel, p.tr = tr.Pid, tr.Notes, tr.Kernel, tr
		go func() {
			<-tr.FirstExited()
			close(p.exited)
			<-tr.Done()
			p.err = tr.Err()
			close(p.done)
		}()
		if ctx.Done() != nil {
			go func() {
				select {
				case <-ctx.Done():
					tr.Signal(syscall.SIGKILL)
				case <-p.exited:
				}
			}()
		}
		return p, nil
	}
	bp, err := backend.Start(plan, opts)
	if err != nil {
		return nil, startError(err)
	}
	sw.Hold(plan.Esw)
	p.Pid, p.Notes, p.Kernel, p.p = bp.Pid, bp.Notes, bp.Kernel, bp
	prog, uid, comm := plan.Program, plan.Cred.UID, plan.Comm
	p.reap = sync.OnceFunc(func() {
		p.st, p.err = bp.Wait()
		if p.err == nil {
			ws, _ := p.st.Sys().(syscall.WaitStatus)
			e.crashed(ws, prog, uid, comm)
		}
		sw.Release(plan.Esw)
		close(p.exited)
		close(p.done)
	})
	if ctx.Done() != nil || e.guard.Load() != nil {
		// The kill and the crash count need the exit as it happens.
		p.reapInBackground()
	}
	if ctx.Done() != nil {
		go func() {
			select {
			case <-ctx.Done():
				bp.Kill()
			case <-p.done:
			}
		}()
	}
	return p, nil
}

// ExecInPlace replaces this process with plan's program, as execve does
// (uexec run --once): the program keeps this pid, parent, process group,
// session and terminal. s gives the exec as requested (Path, Argv, Env,
// Dir, NoRandom, SigMask, Logf, ByKernel). It returns only on failure:
// before the point of no return with this process intact, after it (a
// *StartError with Signal set) with the process to be ended by that
// signal.
func (e *Engine) ExecInPlace(plan *execsw.Plan, s *SpawnRequest) error {
	env := s.Env
	if env == nil {
		env = []string{}
	}
	return startError(backend.ExecInPlace(plan, &backend.InPlaceOptions{Path: s.Path, Argv: s.Argv, Env: env,
		Dir: s.Dir, NoRandom: s.NoRandom || !Randomized(), SigMask: s.SigMask, Logf: s.Logf, BeforeExec: s.BeforeExec,
		KernelExact: s.ByKernel}))
}

// Wait waits for the program to exit and returns its status, with a nil
// error whatever the status, as os.Process.Wait does (exec.Cmd.Wait makes
// an *exec.ExitError of a failed one). For a Tree it is not available
// (os.ProcessState is the os package's): use WaitStatus.
func (p *Process) Wait() (*os.ProcessState, error) {
	if p.tr != nil {
		return nil, errors.New("uexec: Wait of a tree: use WaitStatus")
	}
	p.reap()
	<-p.done
	return p.st, p.err
}

// reapInBackground has a goroutine of its own wait for the program.
func (p *Process) reapInBackground() {
	if p.reap != nil {
		p.reapAsync.Do(func() { go p.reap() })
	}
}

// WaitStatus waits for the program to exit and returns its wait status;
// for a Tree, also for the engine to finish serving the tree (every
// descendant gone, or released with NoWaitDescendants).
func (p *Process) WaitStatus() (syscall.WaitStatus, error) {
	if p.reap != nil {
		p.reap()
	}
	<-p.done
	if p.tr != nil {
		return p.tr.Wait(), p.err
	}
	if p.err != nil {
		return 0, p.err
	}
	ws, _ := p.st.Sys().(syscall.WaitStatus)
	return ws, nil
}

// Release lets a tree go without waiting for its descendants, once its
// first program has exited (at that exit, if called before), as
// SpawnRequest.NoWaitDescendants does: their later execs are the kernel's,
// through SpawnRequest.Helper. It does nothing for a program alone.
func (p *Process) Release() {
	if p.tr != nil {
		p.tr.Release()
	}
}

// Exited is closed when the program has exited (a tree's descendants may
// still run).
func (p *Process) Exited() <-chan struct{} {
	p.reapInBackground()
	return p.exited
}

// Signal sends sig to the program.
func (p *Process) Signal(sig os.Signal) error {
	select {
	case <-p.exited:
		return os.ErrProcessDone
	default:
	}
	if p.tr != nil {
		s, ok := sig.(syscall.Signal)
		if !ok {
			return errors.New("uexec: Signal: not a syscall.Signal")
		}
		return p.tr.Signal(s)
	}
	return p.p.Signal(sig)
}

// TreeNoNewPrivs reports whether a tree this process spawns (SpawnRequest.
// Tree) runs under no_new_privs, as an ordinary user's does (the seccomp
// filter needs it without CAP_SYS_ADMIN): a plan of its first program made
// with Cred.NoNewPrivs set is then the exec the tree gets.
func TreeNoNewPrivs() bool { return backend.TreeNoNewPrivs() }
