package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	_ "unsafe" // go:linkname

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec"
	"github.com/uexec/uexec/execsw"
	"github.com/uexec/uexec/format/elf"
	"github.com/uexec/uexec/segvguard"
)

// options are the env(1)-like options shared by plan and run.
type options struct {
	clearEnv bool
	unset    []string
	set      []string // NAME=VALUE in order
	dir      string
	argv0    string
	hasArgv0 bool
	noRandom bool
	emulRoot string // --emul-root, absolute and without symlinks
	json     bool
	verbose  bool
	// binfmt: rule sources (--binfmt, --binfmt-dir, --binfmt-system) in
	// the order given; the last registered is tried first.
	binfmt []binfmtSource
	// segvguard: --segvguard's settings (nil without); guard is the
	// policy exsw built from them.
	segvguard *segvguard.Config
	guard     *segvguard.Guard
	// run only: tree mode (the default) and its log; treeNoNewPrivs:
	// the tree runs under no_new_privs.
	treeNoNewPrivs bool
	once           bool
	logExecs       string
	noWaitDesc     bool
	build          bool
	veriexec       veriexecOptions
	argv           []string // PROGRAM [ARG]...

	// stop at the entry (PS_STOPEXEC): the first program, and the execs
	// of the tree whose path matches a glob (stopexec.go).
	stopAtEntry bool
	stopAtExec  []string // --stop-at-exec GLOB...
	// image is the program read from standard input (PROGRAM "-").
	image *uexec.Image
}

// errHelp asks for the usage text.
var errHelp = errors.New("help")

// testHook, when set by a test, adjusts every request before it is planned
// (a fixed machine description and credentials for golden files).
var testHook func(*execsw.Request)

// parseOptions reads options until the program name. Options come first;
// "--" ends them; the program's own arguments are never touched.
func parseOptions(args []string, cmd string) (*options, error) {
	o := &options{}
	i := 0
	value := func(name string) (string, error) {
		if i+1 >= len(args) {
			return "", fmt.Errorf("option %s needs a value", name)
		}
		i++
		return args[i], nil
	}
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			// The first NAME=VALUE or the program ends the options,
			// as env(1)'s getopt stops at its first operand.
			break
		}
		if !strings.HasPrefix(a, "--") && len(a) > 2 {
			// Short options together (-iu NAME, -uNAME), as getopt
			// reads them.
			if err := o.shortOptions(args, &i); err != nil {
				return nil, err
			}
			continue
		}
		name, val, hasVal := strings.Cut(a, "=")
		var err error
		get := func() string {
			if hasVal {
				return val
			}
			var v string
			v, err = value(name)
			return v
		}
		if hasVal && flagOptions[name] {
			return nil, fmt.Errorf("option %s takes no value", name)
		}
		switch name {
		case "-i", "--ignore-environment":
			o.clearEnv = true
		case "-u", "--unset":
			o.unset = append(o.unset, get())
		case "-C", "--chdir":
			if o.dir = get(); err == nil {
				err = nonEmpty(name, o.dir)
			}
		case "-a", "--argv0":
			o.argv0, o.hasArgv0 = get(), true
		case "--no-random":
			o.noRandom = true
		case "--emul-root":
			if dir := get(); err == nil {
				if err = nonEmpty(name, dir); err == nil {
					o.emulRoot, err = emulRootDir(dir)
				}
			}
		case "--json":
			if cmd != "plan" {
				return nil, fmt.Errorf("%s is an option of plan", name)
			}
			o.json = true
		case "-h", "--help":
			return nil, errHelp
		case "-v", "--verbose":
			o.verbose = true
		case "--binfmt":
			o.binfmt = append(o.binfmt, binfmtSource{isRule: true, rule: get()})
		case "--binfmt-dir":
			if d := get(); err == nil {
				o.binfmt = append(o.binfmt, binfmtSource{dir: d})
				err = nonEmpty(name, d)
			}
		case "--binfmt-system":
			o.binfmt = append(o.binfmt, binfmtSource{system: true})
		case "--stop-at-entry", "--stop-at-exec":
			if cmd != "run" {
				return nil, fmt.Errorf("%s is an option of run", name)
			}
			if serr := o.stopOption(name, get); err == nil {
				err = serr
			}
		case "--segvguard":
			o.segvguard, err = parseSegvguard(val, hasVal)
		case "--once", "--no-wait-descendants", "--build", "--log-execs":
			if cmd != "run" {
				return nil, fmt.Errorf("%s is an option of run", name)
			}
			switch name {
			case "--once":
				o.once = true
			case "--no-wait-descendants":
				o.noWaitDesc = true
			case "--build":
				o.build = true
			default:
				if o.logExecs = get(); err == nil {
					err = nonEmpty(name, o.logExecs)
				}
			}
		default:
			if ok, verr := o.veriexec.parse(name, get); !ok {
				return nil, fmt.Errorf("unknown option %s", a)
			} else if err == nil {
				err = verr
			}
		}
		if err != nil {
			return nil, err
		}
	}
	// Every operand with a "=" before the program is an assignment, as
	// with env(1) (after "--" too).
	for i < len(args) && strings.Contains(args[i], "=") {
		o.set = append(o.set, args[i])
		i++
	}
	o.argv = args[i:]
	for _, n := range o.unset {
		if n == "" || strings.Contains(n, "=") {
			// unsetenv(3) refuses it: env(1) fails so too.
			return nil, fmt.Errorf("cannot unset %q: %w", n, unix.EINVAL)
		}
	}
	if len(o.argv) == 0 && (cmd != "run" || o.dir != "") {
		return nil, errors.New("no program given") // env: "must specify command with --chdir"
	}
	if err := o.checkStop(); err != nil {
		return nil, err
	}
	if o.once && o.segvguard != nil {
		return nil, errSegvguardOnce
	}
	if err := o.veriexec.check(o, cmd); err != nil {
		return nil, err
	}
	return o, nil
}

// nonEmpty refuses an empty name as option's value (ENOENT, as the kernel
// refuses an empty path), where "" would read as the option left out.
func nonEmpty(option, v string) error {
	if v == "" {
		return fmt.Errorf("%s '': %w", option, unix.ENOENT)
	}
	return nil
}

// flagOptions are the options without a value: "--once=x" is a usage
// error, as GNU env makes "--ignore-environment=x" one.
var flagOptions = map[string]bool{"-i": true, "--ignore-environment": true, "--no-random": true, "--json": true,
	"-h": true, "--help": true, "-v": true, "--verbose": true, "--binfmt-system": true, "--stop-at-entry": true,
	"--once": true, "--no-wait-descendants": true, "--build": true}

// shortOptions reads the short options together in args[*i] ("-iv",
// "-uNAME", "-iC DIR"), as getopt(3) does: a letter that takes a value
// takes the rest of the word, or the next word.
func (o *options) shortOptions(args []string, i *int) error {
	a := args[*i]
	for j := 1; j < len(a); j++ {
		switch c := a[j]; c {
		case 'i':
			o.clearEnv = true
		case 'v':
			o.verbose = true
		case 'h':
			return errHelp
		case 'u', 'C', 'a':
			v := a[j+1:]
			if v == "" {
				if *i+1 >= len(args) {
					return fmt.Errorf("option -%c needs a value", c)
				}
				*i++
				v = args[*i]
			}
			switch c {
			case 'u':
				o.unset = append(o.unset, v)
			case 'C':
				o.dir = v
				return nonEmpty("-C", v)
			default:
				o.argv0, o.hasArgv0 = v, true
			}
			return nil
		default:
			return fmt.Errorf("unknown option -%c", c)
		}
	}
	return nil
}

// environ builds the program's environment from the caller's, as env(1)
// does: the caller's entries as they are (in order, with duplicates and
// entries without "=", which os.Environ leaves out), -u removing every entry
// of its name (unsetenv), NAME=VALUE replacing the first in its place or
// else coming last (putenv).
func (o *options) environ() []string {
	var env []string
	if !o.clearEnv {
		env = callerEnviron()
	}
	for _, n := range o.unset {
		env = slices.DeleteFunc(env, func(kv string) bool { return strings.HasPrefix(kv, n+"=") })
	}
	for _, kv := range o.set {
		k, _, _ := strings.Cut(kv, "=")
		if i := slices.IndexFunc(env, func(e string) bool { return strings.HasPrefix(e, k+"=") }); i >= 0 {
			env[i] = kv
		} else {
			env = append(env, kv)
		}
	}
	return env
}

// callerEnviron is the environment this process was started with, every
// entry of it: the runtime's copy of the envp it was exec'd with, which
// os.Environ filters (it leaves out empty entries). Read so rather than
// from /proc/self/environ, whose lookup costs ~40 µs of a cold start.
func callerEnviron() []string {
	return runtimeEnvs()
}

// runtimeEnvs is the runtime's copy of this process's envp, from its
// initial stack, as the runtime gives it to package syscall.
//
//go:linkname runtimeEnvs syscall.runtime_envs
func runtimeEnvs() []string

// getenv is getenv(3) on env: the first entry of name.
func getenv(env []string, name string) (string, bool) {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// plan plans the exec the options describe. A name without a slash is
// searched in PATH the way execvp(3), and so env(1), searches it. For
// `uexec run` (run), a file the kernel refuses with ENOEXEC is given to
// /bin/sh, as execvp does, and an exec only the kernel can make
// (Switch.KernelOnlyPlan) is planned as the kernel's.
func (o *options) plan(sw *execsw.Switch, run bool) (*execsw.Plan, *execsw.Request, error) {
	shFallback := run
	env := o.environ()
	prog := o.argv[0]
	argv := append([]string{}, o.argv...)
	if o.hasArgv0 {
		argv[0] = o.argv0
	}
	dir := ""
	if o.dir != "" {
		abs, err := filepath.Abs(o.dir)
		if err == nil {
			var fi os.FileInfo
			if fi, err = os.Stat(abs); err == nil && !fi.IsDir() {
				err = unix.ENOTDIR
			} else if err == nil {
				// chdir(2)'s search permission, which env(1)'s own
				// chdir fails on before any exec.
				err = unix.Faccessat(unix.AT_FDCWD, abs, unix.X_OK, unix.AT_EACCESS)
			}
		}
		if err != nil {
			return nil, nil, &dirError{dir: o.dir, err: unwrapErrno(err)}
		}
		dir = abs
	}
	try := func(path string) (*execsw.Plan, *execsw.Request, error) {
		req, err := uexec.SelfRequest(path, argv, env)
		if err != nil {
			return nil, nil, err
		}
		if o.image != nil {
			o.image.Request(req)
			shFallback = false // fexecve has no execvp fallback
		}
		if dir != "" {
			req.Dir = dir
		}
		if testHook != nil {
			testHook(req)
		}
		if o.noRandom {
			req.NoRandom = true
		}
		req.EmulRoot = o.emulRoot
		if o.treeNoNewPrivs {
			// The tree's first exec comes after its filter is in:
			// under no_new_privs (uexec.TreeNoNewPrivs).
			req.Cred.NoNewPrivs = true
		}
		// The program's own names (/proc/self/cwd, from DIR) are
		// planned as what they name in it, under the names given.
		host := req.Path
		if o.image == nil {
			if host, err = uexec.ChildName(path, nil, dir); err != nil {
				return nil, req, err
			}
			req.Path = host
		}
		p, err := sw.Execve(req)
		if p == nil && run {
			// An execute-only program: the kernel's exec, or its
			// errno for what follows.
			p, err = sw.KernelOnlyPlan(req, err)
		}
		if o.image == nil && host != path {
			req.Path = path
			if p != nil {
				p.Renamed(host, path)
			}
		}
		if shFallback && errors.Is(err, unix.ENOEXEC) {
			// execvp: run it as a shell script.
			req.Argv = append([]string{"/bin/sh", path}, argv[1:]...)
			req.Path = "/bin/sh"
			if p2, err2 := sw.Execve(req); err2 == nil {
				return p2, req, nil
			}
		}
		return p, req, err
	}
	if strings.Contains(prog, "/") || o.image != nil {
		return try(prog)
	}
	if prog == "" {
		return nil, nil, &execsw.ExecError{Path: prog, Err: unix.ENOENT}
	}
	// The PATH of the program's environment, as env(1)'s execvp reads it
	// once env has made that environment its own.
	pathEnv, ok := getenv(env, "PATH")
	if !ok {
		pathEnv = "/bin:/usr/bin"
	}
	return searchPath(prog, pathEnv, try)
}

// searchPath is glibc's execvp(3) search of PATH value path for prog, a
// name without a slash: each entry is tried in turn ("" is the working
// directory); EACCES is remembered and the search goes on, as it does for
// ENOENT, ENOTDIR, ENODEV, ETIMEDOUT and ESTALE; any other error ends it.
// An entry as long as glibc's buffer for one (PATH, at most PATH_MAX - 1
// bytes, and its NUL) is skipped, and glibc then reads the ":" after it as
// an empty entry: the working directory is tried next.
func searchPath(prog, path string, try func(string) (*execsw.Plan, *execsw.Request, error)) (*execsw.Plan, *execsw.Request, error) {
	maxEntry := min(len(path), pathMax-1) + 1
	var sawEACCES error
	var last error = &execsw.ExecError{Path: prog, Reason: "not found in PATH", Err: unix.ENOENT}
	for p := 0; ; {
		end := strings.IndexByte(path[p:], ':')
		if end < 0 {
			end = len(path)
		} else {
			end += p
		}
		if end-p >= maxEntry {
			if end == len(path) {
				break
			}
			p = end
			continue
		}
		name := prog
		if end > p {
			name = path[p:end] + "/" + prog
		}
		pl, req, err := try(name)
		switch {
		case err == nil:
			return pl, req, nil
		case errors.Is(err, unix.EACCES):
			sawEACCES = err
		case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR), errors.Is(err, unix.ENODEV), errors.Is(err, unix.ETIMEDOUT), errors.Is(err, unix.ESTALE):
		default:
			return nil, nil, err
		}
		if end == len(path) {
			break
		}
		p = end + 1
	}
	if sawEACCES != nil {
		return nil, nil, sawEACCES
	}
	return nil, nil, last
}

// pathMax is PATH_MAX (include/uapi/linux/limits.h).
const pathMax = 4096

// emulRootDir checks the directory of --emul-root and returns it absolute
// and without symlinks: ".." at the emulation root must reach the parent
// the kernel would reach, not the directory a symlink to it sits in.
func emulRootDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("--emul-root %s: %w", dir, unwrapErrno(err))
	}
	// The kernel's answer first (ELOOP for a loop of links, which
	// EvalSymlinks says without an errno).
	if fi, err := os.Stat(abs); err != nil {
		return "", fmt.Errorf("--emul-root %s: %w", dir, unwrapErrno(err))
	} else if !fi.IsDir() {
		return "", fmt.Errorf("--emul-root %s: %w", dir, unix.ENOTDIR)
	}
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		return "", fmt.Errorf("--emul-root %s: %w", dir, unwrapErrno(err))
	}
	return abs, nil
}

func unwrapErrno(err error) error {
	var errno unix.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return err
}

// errnoName returns the symbolic name of the errno inside err ("ENOENT").
func errnoName(err error) string {
	var errno unix.Errno
	if errors.As(err, &errno) {
		if n := unix.ErrnoName(errno); n != "" {
			return n
		}
		return fmt.Sprintf("errno %d", int(errno))
	}
	return ""
}

// errnoSuffix is " (ENAME)" for an error that carries an errno, else "".
func errnoSuffix(err error) string {
	if n := errnoName(err); n != "" {
		return " (" + n + ")"
	}
	return ""
}

// failure prints err as env(1) would and returns its exit status.
func failure(stderr interface{ Write([]byte) (int, error) }, prog string, err error) int {
	var de *dirError
	if errors.As(err, &de) {
		// uexec's own failure before any exec: env(1)'s status.
		fmt.Fprintf(stderr, "uexec: %v%s\n", de, errnoSuffix(de.err))
		return exitUsage
	}
	msg := err.Error()
	var ee *execsw.ExecError
	var fe *elf.FormatError
	if errors.As(err, &fe) && fe.Path == prog && msg == fe.Error() {
		// The program's name is the line's already.
		msg = "elf: " + fe.Reason + ": " + fe.Err.Error()
	} else if errors.As(err, &ee) {
		msg = ee.Reason
		var errno unix.Errno
		if errors.As(ee.Err, &errno) {
			if msg == "" {
				msg = errno.Error()
			} else {
				msg += ": " + errno.Error()
			}
		}
		if ee.Path != prog {
			msg = execsw.ShowName(ee.Path) + ": " + msg
		}
	}
	name := errnoName(err)
	if name != "" {
		fmt.Fprintf(stderr, "uexec: %s: %s (%s)\n", execsw.ShowName(prog), msg, name)
	} else {
		fmt.Fprintf(stderr, "uexec: %s: %s\n", execsw.ShowName(prog), msg)
	}
	if errors.Is(err, unix.ENOENT) {
		return exitNotFound
	}
	return exitCannot
}

// dirError is a -C DIR that cannot be the program's cwd: uexec's failure,
// as env(1)'s is (status 125), not the program's.
type dirError struct {
	dir string
	err error
}

func (e *dirError) Error() string {
	return fmt.Sprintf("cannot change directory to '%s': %v", e.dir, e.err)
}
func (e *dirError) Unwrap() error { return e.err }
