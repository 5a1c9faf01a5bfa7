package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec"
	"github.com/uexec/uexec/execsw"
	"github.com/uexec/uexec/internal/sigexit"
	"github.com/uexec/uexec/internal/sys"
)

// forwarded are the signals uexec passes on to the program, as a process
// supervisor would; the program decides what they do. Besides the usual
// ones, each other signal a kill(2) of the program's pid would deliver to
// it natively: SIGSEGV, SIGBUS, SIGFPE, SIGILL and SIGABRT come to the
// channel only when sent (a fault of uexec's own still crashes uexec), and
// the real-time signals. Not forwarded: those uexec may get for itself
// (SIGPIPE, SIGXFSZ and SIGXCPU of its own writes and time, SIGSYS of a
// seccomp filter, SIGTRAP), the runtime's (SIGPROF, SIGURG), and the stops
// and SIGCHLD, which job control and the waits handle.
var forwarded = append([]os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH, syscall.SIGCONT,
	syscall.SIGALRM, syscall.SIGVTALRM, syscall.SIGPWR, syscall.SIGSTKFLT,
	syscall.SIGSEGV, syscall.SIGBUS, syscall.SIGFPE, syscall.SIGILL, syscall.SIGABRT}, realtimeSignals()...)

// realtimeSignals are SIGRTMIN (34, as glibc has it: 32 and 33 are its
// own) to SIGRTMAX.
func realtimeSignals() []os.Signal {
	var out []os.Signal
	for s := 34; s <= 64; s++ {
		out = append(out, syscall.Signal(s))
	}
	return out
}

// initialSigMask is the signal mask uexec was started with, which the
// program inherits as from a kernel exec; nil when unknown.
var initialSigMask *uint64

// readSigMask reads the blocked set of this thread, which still has the
// mask uexec was started with when main begins (every thread of the Go
// runtime starts with it): the runtime only changes masks once signals are
// requested with os/signal. (Locking the thread would cost a thread.)
func readSigMask() *uint64 {
	var old unix.Sigset_t
	if err := unix.PthreadSigmask(unix.SIG_BLOCK, nil, &old); err != nil {
		return nil
	}
	m := old.Val[0]
	return &m
}

// catchable returns the forwarded signals that uexec's caller did not
// ignore. An ignored signal must stay ignored in uexec, so that the program
// inherits SIG_IGN as it would from a kernel exec: catching it here would
// leave it at its default in the program. (The Go runtime keeps an
// inherited SIG_IGN only for SIGHUP and SIGINT; see the README's limits.)
func catchable() []os.Signal {
	var out []os.Signal
	for _, s := range forwarded {
		if !signal.Ignored(s) {
			out = append(out, s)
		}
	}
	return out
}

// endOnSignals makes SIGUSR1, SIGUSR2 and SIGQUIT, unless uexec's caller
// ignored them, end uexec by the same signal (without a core file) until
// the function it returns is called. The Go runtime ends it by SIGHUP,
// SIGINT and SIGTERM itself.
func endOnSignals() (stop func()) {
	c := make(chan os.Signal, 1)
	var sigs []os.Signal
	for _, s := range []os.Signal{syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGQUIT} {
		if !signal.Ignored(s) {
			sigs = append(sigs, s)
		}
	}
	signal.Notify(c, sigs...)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-c:
			unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{})
			sigexit.Die(s.(syscall.Signal))
		case <-done:
		}
	}()
	return func() {
		signal.Stop(c)
		close(done)
	}
}

// ttySignals are the signals a terminal sends to its whole foreground
// process group, which holds the program too: forwarding them again would
// deliver them twice.
var ttySignals = map[os.Signal]bool{syscall.SIGINT: true, syscall.SIGQUIT: true, syscall.SIGWINCH: true}

func cmdRun(stdin io.Reader, stdout, stderr io.Writer, args []string) (code int) {
	o, err := parseOptions(args, "run")
	if err != nil {
		if err == errHelp {
			io.WriteString(stdout, usage())
			return 0
		}
		fmt.Fprintf(stderr, "uexec run: %v%s\nTry 'uexec help' for more information.\n", err, errnoSuffix(err))
		return exitUsage
	}
	if len(o.argv) == 0 {
		// No program: the environment it would get, as env(1) prints.
		for _, kv := range o.environ() {
			fmt.Fprintln(stdout, kv)
		}
		return 0
	}
	// Until signals are caught for the program (below), one ends uexec
	// as it would end env(1) before its exec: the Go runtime alone would
	// drop SIGUSR1 and SIGUSR2 and end with a stack dump on SIGQUIT (the
	// log's open may wait for a FIFO's reader, the program be read from
	// standard input).
	stopEarly := endOnSignals()
	elog, err := openExecLog(o.logExecs, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "uexec: --log-execs: %v%s\n", err, errnoSuffix(err))
		return exitUsage
	}
	defer func() {
		if err := elog.close(); err != nil {
			// The program's status stands, unless it is success: the
			// log it was run for is not whole.
			fmt.Fprintf(stderr, "uexec: %v%s\n", err, errnoSuffix(err))
			if code == 0 {
				code = exitUsage
			}
		}
	}()
	sw, err := o.exsw(stderr)
	if err != nil {
		usageError(stderr, "run", err)
		return exitUsage
	}
	if code := o.readImage(stdin, stderr); code != 0 {
		return code
	}
	defer o.finishVeriexec(stderr)
	// Signals that arrive while the program is being built are held and
	// forwarded once it runs; before (opening the log, which may be a
	// FIFO, reading the program from standard input) they end uexec. An
	// exec in place forwards nothing: uexec becomes the program, and a
	// signal before that ends uexec as it would end env(1).
	sigs := make(chan os.Signal, 16)
	if !o.once || !isStdFile(stdin, 0) || !isStdFile(stdout, 1) || !isStdFile(stderr, 2) {
		keepOnSIGPIPE()
		signal.Notify(sigs, catchable()...)
		defer signal.Stop(sigs)
		stopEarly()
	}
	first := &uexec.ExecEvent{Time: time.Now(), Pid: os.Getpid(), Ppid: os.Getpid(), Path: o.argv[0], Argv: o.argv, By: "uexec"}
	o.treeNoNewPrivs = !o.once && uexec.TreeNoNewPrivs()
	p, req, err := o.plan(sw, true)
	if err != nil {
		// No program was started: the exec that failed is uexec's own.
		first.Ppid = os.Getppid()
		if first.Cwd, _ = os.Getwd(); o.dir != "" {
			first.Cwd, _ = filepath.Abs(o.dir)
		}
		first.Err = err
		elog.write(*first)
		return failure(stderr, o.argv[0], err)
	}
	defer p.Close()
	first.Path, first.Argv, first.Chain, first.Cwd = req.Path, req.Argv, p.Chain, execsw.DirName(req.Dir)
	first.Note = p.Cred.IgnoredNote()
	if first.Cwd == "" {
		first.Cwd, _ = os.Getwd()
	}
	if len(o.stopAtExec) > 0 && o.stopMatch(req.Path, resolvedPath(req.Path, first.Cwd)) {
		o.stopAtEntry = true // the first exec of the tree is one of its execs
	}
	first.Stopped = o.stopAtEntry
	files, closeFiles, err := stdFiles(stdin, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "uexec: %v\n", err)
		return exitUsage
	}
	defer closeFiles()
	var logf func(string, ...any)
	if o.verbose {
		logf = func(format string, a ...any) { io.WriteString(stderr, verboseLines(fmt.Sprintf(format, a...))) }
	}
	e := &uexec.Engine{Switch: sw}
	// The program changes directory only with -C, as under env(1): its
	// cwd is otherwise uexec's own, inherited, which a chdir by name could
	// not always enter again (a directory its user may no longer search,
	// one removed or renamed since).
	dir := ""
	if o.dir != "" {
		dir = req.Dir
	}
	sreq := &uexec.SpawnRequest{Files: files, Dir: dir, NoRandom: req.NoRandom, Logf: logf, SigMask: initialSigMask,
		Path: req.Path, Argv: req.Argv, Env: req.Envp, StopAtEntry: o.stopAtEntry, Memfd: o.image}
	if !o.once {
		return runTree(e, p, sreq, o, elog, first, sigs, stderr, closeFiles)
	}
	if onStdFDs(files) {
		// uexec becomes the program, as env(1) does: the program keeps
		// uexec's pid, parent, process group, session and terminal.
		first.Pid, first.Ppid = os.Getpid(), os.Getppid()
		if elog != nil {
			// Without a log, nothing needs to know who makes the exec
			// before it is made.
			sreq.BeforeExec = func(kernel string) {
				if kernel != "" {
					first.By, first.Note = "kernel", execsw.JoinNotes(kernel, first.Note)
				}
				elog.write(*first)
				if err := elog.close(); err != nil {
					fmt.Fprintf(stderr, "uexec: %v%s\n", err, errnoSuffix(err))
				}
			}
		}
		if o.verbose {
			printNotes(stderr, p, req.Path)
		}
		err := e.ExecInPlace(p, sreq)
		return startFailed(err, o, nil, first, stderr, closeFiles)
	}
	proc, err := e.SpawnPlan(context.Background(), p, sreq)
	if err != nil {
		return startFailed(err, o, elog, first, stderr, closeFiles)
	}
	first.Pid = proc.Pid
	if proc.Kernel != "" {
		first.By, first.Note = "kernel", execsw.JoinNotes(proc.Kernel, first.Note)
	}
	elog.write(*first)
	if o.verbose {
		printNotes(stderr, p, req.Path)
	}
	return supervise(proc, false, sigs, stderr, func(ws syscall.WaitStatus) { elog.exit(time.Now(), proc.Pid, ws) })
}

// supervise forwards signals to the first program until it has exited,
// then waits for its tree (if any) and ends uexec as the program ended.
func supervise(proc *uexec.Process, tree bool, sigs chan os.Signal, stderr io.Writer, exited func(syscall.WaitStatus)) int {
	for {
		select {
		case sig := <-sigs:
			if ttySignals[sig] && inForeground() {
				continue
			}
			if sig == syscall.SIGCONT && !stoppedNow(proc.Pid) {
				// uexec was continued with its process group (the
				// shell's fg or bg), which holds the program too.
				continue
			}
			proc.Signal(sig)
		case <-proc.Exited():
			// Descendants may live on: serve them (or let them go) first.
			ws, err := waitTree(proc, tree, sigs)
			if err != nil {
				// A tree's error is the serving's: the status is
				// still the program's.
				fmt.Fprintf(stderr, "uexec: %v\n", err)
				if !tree {
					return exitUsage
				}
			}
			if exited != nil {
				exited(ws)
			}
			return exitLikeStatus(ws)
		}
	}
}

// waitTree waits for the end of proc, whose program has exited: for a tree,
// for its descendants, which a SIGTERM, SIGINT, SIGHUP or SIGQUIT to uexec
// meanwhile lets go (Process.Release: their later execs are the kernel's),
// instead of being held for a program that is no more.
func waitTree(proc *uexec.Process, tree bool, sigs chan os.Signal) (syscall.WaitStatus, error) {
	if !tree {
		return proc.WaitStatus()
	}
	var ws syscall.WaitStatus
	var err error
	done := make(chan struct{})
	go func() { ws, err = proc.WaitStatus(); close(done) }()
	for {
		select {
		case <-done:
			return ws, err
		case sig := <-sigs:
			switch sig {
			case syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT:
				proc.Release()
			}
		}
	}
}

// isStdFile reports whether x is this process's descriptor fd.
func isStdFile(x any, fd uintptr) bool {
	f, ok := x.(*os.File)
	return ok && f.Fd() == fd
}

// onStdFDs reports whether files are this process's descriptors 0, 1 and 2,
// so that an exec in place gives the program the same standard files.
func onStdFDs(files []*os.File) bool {
	for i, f := range files {
		if f == nil || f.Fd() != uintptr(i) {
			return false
		}
	}
	return len(files) == 3
}

// stdFiles returns descriptors for the program's standard input, output and
// error: the files themselves when they are files (the usual case: uexec's
// own descriptors pass through), else pipes copied to and from the readers
// and writers. The returned func waits for the copies to finish.
func stdFiles(stdin io.Reader, stdout, stderr io.Writer) ([]*os.File, func(), error) {
	var files []*os.File
	var wait []chan struct{}
	var closers []*os.File
	fail := func(err error) ([]*os.File, func(), error) {
		for _, c := range closers {
			c.Close()
		}
		return nil, nil, err
	}
	if f, ok := stdin.(*os.File); ok {
		files = append(files, f)
	} else {
		r, w, err := os.Pipe()
		if err != nil {
			return fail(err)
		}
		closers = append(closers, r)
		files = append(files, r)
		go func() { io.Copy(w, stdin); w.Close() }()
	}
	for _, out := range []io.Writer{stdout, stderr} {
		if f, ok := out.(*os.File); ok {
			files = append(files, f)
			continue
		}
		r, w, err := os.Pipe()
		if err != nil {
			return fail(err)
		}
		closers = append(closers, w)
		files = append(files, w)
		done := make(chan struct{})
		wait = append(wait, done)
		go func() { io.Copy(out, r); r.Close(); close(done) }()
	}
	return files, func() {
		// Our copies of the pipe ends go first, so that the readers see
		// EOF once the program's copies are gone too.
		for _, c := range closers {
			c.Close()
		}
		for _, d := range wait {
			<-d
		}
	}, nil
}

// inForeground reports whether uexec's process group is the foreground one
// of its controlling terminal: then the terminal's signals reached the
// program directly.
func inForeground() bool {
	fd, err := unix.Open("/dev/tty", unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	fg, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
	return err == nil && fg == unix.Getpgrp()
}

// exitLikeStatus ends uexec the way the program ended: the same exit
// status, or the same signal so that a shell sees the same wait status.
// It returns only for an exit status.
func exitLikeStatus(ws syscall.WaitStatus) int {
	if !ws.Signaled() {
		return ws.ExitStatus()
	}
	sig := ws.Signal()
	// Die of the same signal, without a core file of uexec's own (the
	// program already dumped its core if it was to).
	signal.Reset(sig)
	unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{})
	sigexit.Die(sig)
	// A signal whose default is to be ignored cannot end us: the shell
	// convention then is 128+signal.
	return 128 + int(sig)
}

// printNotes says what the first program can observe that differs from a
// kernel exec (--verbose), besides the backend's notes, which reach stderr
// through its Logf.
func printNotes(stderr io.Writer, p *execsw.Plan, path string) {
	if p.Cred.Ignored != "" {
		fmt.Fprintf(stderr, "uexec: note: set-id bits of %s not applied: %s\n", path, p.Cred.Ignored)
	}
}

// startFailed ends run after the backend could not start the first
// program: past the point of no return uexec dies of the signal the kernel
// would have killed the program with (the caller sees only that), before
// it with exit status 126 and a message.
func startFailed(err error, o *options, elog *execLog, first *uexec.ExecEvent, stderr io.Writer, closeFiles func()) int {
	first.Err = err
	var be *uexec.StartError
	if errors.As(err, &be) && be.Signal != 0 {
		first.Note = "past the point of no return"
		elog.write(*first)
		if o.verbose {
			fmt.Fprintf(stderr, "uexec: %s: %v\n", o.argv[0], err)
		} else if sys.SeccompFiltered() {
			// Most likely the filters' refusal of a call of the stub's,
			// not the program's fault: said, as the kernel would not
			// have killed it.
			fmt.Fprintf(stderr, "uexec: %s: the stub died (%v) under seccomp filters of uexec's own, which judge its system calls; --once has the kernel exec the program\n", o.argv[0], be.Signal)
		}
		closeFiles()
		unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{})
		sigexit.Die(be.Signal)
		return 128 + int(be.Signal)
	}
	elog.write(*first)
	fmt.Fprintf(stderr, "uexec: %s: %v%s\n", o.argv[0], err, errnoSuffix(err))
	if errors.As(err, &be) && kernelExecStep(be.Step) && errors.Is(err, unix.ENOENT) {
		// The kernel's own exec of the program found nothing (a
		// missing interpreter): env(1)'s 127. uexec's own failures
		// (materialising the stub) stay 126.
		return exitNotFound
	}
	return exitCannot
}

// kernelExecStep reports whether a start's failed step is the kernel's
// exec of the program as requested (backend: "executing PATH" in place,
// "the kernel's exec of PATH" by a child).
func kernelExecStep(step string) bool {
	return strings.HasPrefix(step, "executing ") || strings.HasPrefix(step, "the kernel's exec of ")
}

// runTree runs the first program with every exec of its process tree done
// by uexec (the default of run).
func runTree(e *uexec.Engine, p *execsw.Plan, sreq *uexec.SpawnRequest, o *options, elog *execLog,
	first *uexec.ExecEvent, sigs chan os.Signal, stderr io.Writer, closeFiles func()) int {
	sreq.Tree, sreq.NoWaitDescendants, sreq.EmulRoot, sreq.Build = true, o.noWaitDesc, o.emulRoot, o.build
	if elog != nil || o.verbose {
		sreq.OnExec = elog.write
	}
	// A log file's lines may follow the execs they report (a tree whose
	// execs the kernel does then does not wait for them); a log or notes
	// on a terminal or stderr precede them, as the programs' own output
	// there comes after.
	sreq.LateExecEvents = elog.regularFile() && !o.verbose
	if elog != nil || o.guard != nil {
		sreq.OnExit = o.treeExits(elog)
	}
	if exe, err := os.Executable(); err == nil {
		sreq.Helper = []string{exe, uexec.HelperArg}
	}
	// The first event is the first program's start, which is said below;
	// later ones may be its own execs, in the same process.
	events := 0
	if len(o.stopAtExec) > 0 {
		sreq.StopAtExec = o.stopMatch
		sreq.OnExec = func(ev uexec.ExecEvent) {
			elog.write(ev)
			if events++; ev.Stopped && events > 1 {
				sayStopped(stderr, ev.Pid)
			}
		}
	}
	if o.verbose {
		sreq.OnExec = func(ev uexec.ExecEvent) {
			elog.write(ev)
			if events++; ev.Stopped && events > 1 {
				sayStopped(stderr, ev.Pid)
			}
			if ev.Pid == 0 || events == 1 {
				return // the first program: printNotes says it
			}
			if ev.By == "kernel" {
				fmt.Fprintf(stderr, "uexec: pid %d: %s: exec left to the kernel: %s\n", ev.Pid, ev.Path, ev.Note)
			} else if ev.Err != nil && ev.Note != "" {
				fmt.Fprintf(stderr, "uexec: pid %d: %s: %v (%s)\n", ev.Pid, ev.Path, ev.Err, ev.Note)
			} else if errors.Is(ev.Err, syscall.EPERM) {
				// A policy's refusal (veriexec, segvguard): the
				// kernel's own failures (ENOENT of a PATH search)
				// are many and said by the callers.
				fmt.Fprintf(stderr, "uexec: pid %d: %s: refused: %v\n", ev.Pid, ev.Path, ev.Err)
			} else if ev.Err == nil && ev.Note != "" {
				fmt.Fprintf(stderr, "uexec: pid %d: %s: built by uexec; note: %s\n", ev.Pid, ev.Path, ev.Note)
			} else if ev.Err == nil {
				fmt.Fprintf(stderr, "uexec: pid %d: %s: built by uexec\n", ev.Pid, ev.Path)
			}
		}
	}
	if !o.stopAtEntry {
		// A shell waits for uexec: when the program stops on its own,
		// uexec stops with the same signal, and SIGCONT to uexec
		// continues it (supervise). A program left stopped at its
		// entry is not a stop of the job.
		sreq.OnFirstStop = standInStop
	}
	proc, err := e.SpawnPlan(context.Background(), p, sreq)
	var be *uexec.StartError
	var errno syscall.Errno
	if errors.As(err, &be) && be.Pid == 0 && be.Step == "starting the stub" && errors.As(err, &errno) && (errno == unix.EPERM || errno == unix.EACCES) {
		// A sandbox that forbids ptrace (or a tracer of our own): say so
		// in one line, with the way that works.
		fmt.Fprintf(stderr, "uexec: cannot build the execs of the tree: %v; use --once to load only %s (its own execs are then the kernel's)\n",
			be.Err, o.argv[0])
		return exitUsage
	}
	if errors.As(err, &be) && errors.As(err, &errno) && errno == unix.EBUSY && strings.Contains(be.Step, "seccomp") {
		// Linux lets one seccomp listener watch a process and its
		// ancestors: uexec's tree inside another (or under another
		// supervisor that uses one) cannot have its own.
		fmt.Fprintf(stderr, "uexec: cannot build the execs of the tree: a seccomp listener already watches this process (uexec run inside a tree of uexec's, or another supervisor that uses one), and Linux allows one (%v); use --once to load only %s\n",
			errno, o.argv[0])
		return exitUsage
	}
	if err != nil {
		return startFailed(err, o, elog, first, stderr, closeFiles)
	}
	first.Pid = proc.Pid
	if o.stopAtEntry {
		sayStopped(stderr, proc.Pid)
	}
	if o.verbose {
		printNotes(stderr, p, first.Path)
	}
	return supervise(proc, true, sigs, stderr, nil)
}

// standInStop stops uexec with sig, the signal that stopped the first
// program pid, as the program's stand-in with uexec's parent; unless the
// program runs again by now: a stop sent to the whole process group (the
// terminal's ^Z, SIGTTIN for a background read) stopped uexec too, and the
// shell's fg or bg has continued both.
func standInStop(pid int, sig syscall.Signal) {
	if stoppedNow(pid) {
		syscall.Kill(os.Getpid(), sig)
	}
}

// stoppedNow reports whether process pid is in a stop (state T in
// /proc/PID/stat; not t, a tracer's stop). Plain system calls, not the
// runtime's poller: a SIGCONT (fg) that comes between this look and
// standInStop's own stop leaves uexec stopped while the program runs, so
// the two are kept as close as can be.
func stoppedNow(pid int) bool {
	fd, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/stat", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	var buf [1024]byte
	n, err := unix.Read(fd, buf[:])
	unix.Close(fd)
	if err != nil || n <= 0 {
		return false
	}
	b := buf[:n]
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] == 'T'
}

// verboseLines is msg as --verbose writes it: each of its lines (a stub's
// listing has many) begins with "uexec: ", so that uexec's lines can be
// told from the program's on a shared stderr.
func verboseLines(msg string) string {
	return "uexec: " + strings.ReplaceAll(strings.TrimSuffix(msg, "\n"), "\n", "\nuexec: ") + "\n"
}
