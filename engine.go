package uexec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	backend "github.com/uexec/uexec/backend/linux"
	"github.com/uexec/uexec/execsw"
	"github.com/uexec/uexec/format/binfmt"
)

// ErrFatal marks an exec that Linux kills after the point of no return
// (with SIGSEGV): Spawn's error then wraps it.
var ErrFatal = execsw.ErrFatal

// Engine starts programs with uexec's exec engine instead of the kernel's
// loader: a drop-in for os/exec where the exec must be uexec's.
type Engine struct {
	// Switch is the exec switch used to plan every exec; NewEngine
	// fills it with NewSwitch.
	Switch *execsw.Switch
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
	if e.Switch == nil {
		e.Switch = NewSwitch()
	}
	for _, f := range e.Switch.Entries() {
		if m, ok := f.(*binfmt.Misc); ok {
			return m
		}
	}
	m := &binfmt.Misc{}
	// The entry is new: Add cannot refuse it.
	_ = e.Switch.Add(m, execsw.PrioFirst)
	return m
}

// SpawnRequest describes a program to start.
type SpawnRequest struct {
	Path string   // the file to execute; no PATH search
	Argv []string // argv, argv[0] included
	Env  []string // the environment; nil means an empty one
	Dir  string   // working directory; "" means this process's
	// Files become descriptors 0, 1, 2, ...; nil means os.Stdin,
	// os.Stdout and os.Stderr.
	Files []*os.File
	// NoRandom runs the program without address randomisation
	// (ADDR_NO_RANDOMIZE), like setarch -R.
	NoRandom bool
	// EmulRoot is an emulation root (NetBSD's TRYEMULROOT): absolute
	// names of the program and its interpreters are looked up under
	// this directory first and in / when absent there. It must be an
	// absolute path without symlinks; "" means none. It applies to this
	// exec only: the program's own execs are the kernel's.
	EmulRoot string
	// Image, when set, is the program itself (an ELF or a #! script),
	// read to its end and exec'd as fexecve(3) of a sealed memfd named
	// ImageName ("image" when empty) would: Path is then ignored, and
	// AT_EXECFN, comm and /proc/PID/exe are the kernel's for that memfd
	// (see Image).
	Image     io.Reader
	ImageName string
}

// Process is a program started by Spawn.
type Process struct {
	Pid int
	// Notes say what the program could observe that differs from a
	// kernel exec, and why.
	Notes []string

	p    *backend.Process
	once sync.Once
	st   *os.ProcessState
	err  error
	done chan struct{}
}

// Spawn plans the exec of s with this process's credentials, limits and
// personality, and starts it. An exec the kernel would refuse returns an
// error wrapping the same errno (errors.Is(err, unix.ENOENT)) and starts
// nothing. When ctx is done before the program exits, the program is
// killed, as exec.CommandContext does.
func (e *Engine) Spawn(ctx context.Context, s *SpawnRequest) (*Process, error) {
	if s == nil || s.Path == "" && len(s.Argv) == 0 && s.Image == nil {
		return nil, errors.New("uexec: Spawn needs a path")
	}
	if s.EmulRoot != "" && !filepath.IsAbs(s.EmulRoot) {
		return nil, fmt.Errorf("uexec: SpawnRequest.EmulRoot %q is not an absolute path", s.EmulRoot)
	}
	files := s.Files
	var im *Image
	if s.Image != nil {
		if files == nil {
			files = []*os.File{os.Stdin, os.Stdout, os.Stderr}
		}
		name := s.ImageName
		if name == "" {
			name = "image"
		}
		var err error
		if im, err = NewImage(s.Image, name, len(files)); err != nil {
			return nil, err
		}
		defer im.Close()
	}
	req, err := SelfRequest(s.Path, s.Argv, s.Env)
	if err != nil {
		return nil, err
	}
	var fexec *backend.Fexecve
	if im != nil {
		im.Request(req)
		files, fexec = im.Files(files)
	}
	if s.Dir != "" {
		req.Dir = s.Dir
	}
	if s.NoRandom {
		req.NoRandom = true
	}
	req.EmulRoot = s.EmulRoot
	sw := e.Switch
	if sw == nil {
		sw = NewSwitch()
	}
	plan, err := sw.Execve(req)
	if err != nil {
		return nil, err
	}
	defer plan.Close()
	bp, err := backend.Start(plan, &backend.Options{Files: files, Dir: req.Dir, NoRandom: req.NoRandom,
		Path: req.Path, Argv: req.Argv, Env: req.Envp, Fexecve: fexec})
	if err != nil {
		return nil, err
	}
	sw.Hold(plan.Esw)
	p := &Process{Pid: bp.Pid, Notes: bp.Notes, p: bp, done: make(chan struct{})}
	go func() {
		p.st, p.err = bp.Wait()
		sw.Release(plan.Esw)
		close(p.done)
	}()
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

// Wait waits for the program to exit and returns its status.
func (p *Process) Wait() (*os.ProcessState, error) {
	<-p.done
	return p.st, p.err
}

// Signal sends sig to the program.
func (p *Process) Signal(sig os.Signal) error {
	select {
	case <-p.done:
		return os.ErrProcessDone
	default:
	}
	return p.p.Signal(sig)
}
