package main

import (
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/uexec/uexec/internal/testelf"
	"github.com/uexec/uexec/internal/testenv"
)

// The untraced tree: what a program sees of its own children, stops and
// namespaces is the kernel's, natively and under `uexec run`.

func compareTree(t *testing.T, argv ...string) {
	t.Helper()
	native := runCmd(t, "", "/", argv...)
	under := runCmd(t, "", "/", append([]string{uexecBin, "run", "--build"}, argv...)...)
	if native.String() != under.String() {
		t.Errorf("natively:\n%v\nunder uexec run:\n%v", native, under)
	}
}

// TestTreeWaitsAreNative: a child whose pidfd is readable is reapable at
// once (the tracer of the old design saw every exit first).
func TestTreeWaitsAreNative(t *testing.T) {
	needRun(t)
	prog := testenv.BuildC(t, "testdata/progs/pidfdreap.c")
	compareTree(t, prog, "200")
}

// TestTreeStoppedChild: a stopped child is in state T (stopped), not t
// (tracing stop), and not traced.
func TestTreeStoppedChild(t *testing.T) {
	needRun(t)
	compareTree(t, "/bin/sh", "-c", `exec 2>/dev/null; sleep 5 & p=$!; kill -STOP $p; sleep 0.2; ps -o stat= -p $p; grep TracerPid /proc/$p/status; kill -KILL $p; wait $p; echo $?`)
}

// TestTreeExecveCheck: execveat with AT_EXECVE_CHECK checks and does not
// exec: 0 for a program, the errno for a file that is not executable.
func TestTreeExecveCheck(t *testing.T) {
	needRun(t)
	prog := testenv.BuildC(t, "testdata/progs/execvecheck.c")
	compareTree(t, prog, "/bin/true", "/etc/passwd", "/nonexistent")
	for _, mode := range treeModes {
		log := filepath.Join(t.TempDir(), "log")
		r := runCmd(t, "", "/", append(append([]string{uexecBin, "run", "--log-execs", log}, mode.args...), prog, "/bin/true")...)
		if !strings.Contains(r.stdout, "/bin/true: 0 ok") {
			t.Errorf("%s: AT_EXECVE_CHECK of /bin/true: %v", mode.name, r)
		}
		// The check's line names the call (it had none of it).
		checked := false
		for _, l := range readExecLog(t, log) {
			if strings.Contains(l.Note, "AT_EXECVE_CHECK") {
				checked = true
				if l.Path != "/bin/true" || len(l.Argv) == 0 || l.Ppid == 0 || l.By != "kernel" {
					t.Errorf("%s: the check logged as %+v", mode.name, l)
				}
			}
		}
		if !checked {
			t.Errorf("%s: no AT_EXECVE_CHECK line in the log", mode.name)
		}
	}
}

// TestTreeOwnMountNamespace: a program that makes its own mount namespace
// and runs a file from a tmpfs mounted there runs it, as natively.
func TestTreeOwnMountNamespace(t *testing.T) {
	needRun(t)
	testenv.NeedTool(t, "unshare")
	compareTree(t, "/bin/sh", "-c", `unshare -m sh -c 'mount -t tmpfs t /mnt && cp /bin/true /mnt/x && /mnt/x && echo ran from the tmpfs'`)
}

// TestOrdinaryUserSelfExe: as uid 65534, programs that find themselves
// through /proc/self/exe (go, java, node, python3) work under `uexec run`
// and `--once` as natively: where the stub could not set /proc/PID/exe,
// the kernel does the exec.
func TestOrdinaryUserSelfExe(t *testing.T) {
	needRun(t)
	setpriv := testenv.NeedTool(t, "setpriv")
	user := []string{setpriv, "--reuid", "65534", "--regid", "65534", "--clear-groups", "--"}
	dir := testenv.SharedTempDir(t)
	bin := dir + "/uexec"
	b, err := os.ReadFile(uexecBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	progs := [][]string{
		{testenv.NeedTool(t, "readlink"), "/proc/self/exe"},
		{"/usr/bin/python3", "-c", "import os; print(os.readlink('/proc/self/exe'))"},
		{testenv.NeedTool(t, "go"), "version"},
	}
	for _, tool := range [][]string{{"java", "-version"}, {"node", "-e", "console.log(process.execPath)"}} {
		if p, err := exec.LookPath(tool[0]); err == nil {
			progs = append(progs, append([]string{p}, tool[1:]...))
		}
	}
	for _, argv := range progs {
		native := runCmd(t, "", "/", append(user, argv...)...)
		for _, mode := range [][]string{{"run"}, {"run", "--once"}} {
			under := runCmd(t, "", "/", append(append(append(user, bin), mode...), argv...)...)
			if under.String() != native.String() {
				t.Errorf("%v as 65534: natively\n%v\nunder uexec %v:\n%v", argv, native, mode, under)
			}
		}
	}
}

// TestTreeStubRefused: in a sandbox that may execute only the files under
// /usr (Landlock), uexec's stub cannot be executed in the caller's place;
// the caller's own exec is then the kernel's, the program runs as natively,
// and the log says so.
func TestTreeStubRefused(t *testing.T) {
	needRun(t)
	prog := testenv.BuildC(t, "testdata/progs/landlockexec.c")
	// ls shows the descriptors a program gets: none of uexec's.
	script := `/bin/true && echo true ran; /usr/bin/env sh -c 'echo $0'; /bin/ls /proc/self/fd`
	compareTree(t, prog, "/usr", "/bin/sh", "-c", script)
	log := filepath.Join(t.TempDir(), "execs.log")
	runCmd(t, "", "/", uexecBin, "run", "--build", "--log-execs", log, prog, "/usr", "/bin/sh", "-c", script)
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if !strings.Contains(line, `"event":"exec"`) || strings.Contains(line, `"path":"`+prog+`"`) ||
			strings.Contains(line, `"error"`) { // env's search of PATH
			continue
		}
		n++
		if !strings.Contains(line, `"by":"kernel"`) || !strings.Contains(line, "the stub could not be executed (permission denied)") {
			t.Errorf("exec in the sandbox logged as %s", line)
		}
	}
	if n != 5 {
		t.Errorf("%d execs in the sandbox logged, want 5 (sh, true, env, sh, ls):\n%s", n, b)
	}
}

// TestTreeStubRefusedCall: where the kernel refuses the stub's exec, the
// caller gets what the kernel's own exec of its call gives. When that fails
// too, the caller sees the kernel's registers (uexec's marker of its own
// calls is not left in r9) and no descriptor of uexec's: neither the stub's
// copy nor the plan's file handed to a caller that may not read it (an
// execute-only program, a caller without the DAC capabilities); when it
// succeeds, the program has none either. An exec planned through an
// emulation root fails with the stub's errno: the kernel's exec would not
// look there.
func TestTreeStubRefusedCall(t *testing.T) {
	needRun(t)
	testenv.NeedRoot(t) // a caller without the DAC capabilities
	setpriv := testenv.NeedTool(t, "setpriv")
	prog := testenv.BuildC(t, "testdata/progs/landlockexec.c", "-static")
	dir := t.TempDir()
	box := filepath.Join(dir, "box")
	os.Mkdir(box, 0o755)
	boxed := filepath.Join(box, "landlockexec")
	copyFile(t, prog, boxed, 0o111)
	drop := []string{setpriv, "--bounding-set", "-dac_override,-dac_read_search", "--inh-caps=-all", "--", prog}
	compareTree(t, prog, "-", "/bin/true")
	compareTree(t, append(drop, "-", boxed)...)
	compareTree(t, append(drop, box, boxed)...)

	emul := filepath.Join(dir, "emul")
	os.MkdirAll(filepath.Join(emul, "bin"), 0o755)
	copyFile(t, "/bin/true", filepath.Join(emul, "bin", "only-in-emul"), 0o755)
	r := runCmd(t, "", "/", uexecBin, "run", "--build", "--emul-root", emul, prog, "-", "/bin/only-in-emul")
	if !strings.HasPrefix(r.stdout, "execve: -13\n") {
		t.Errorf("an exec through the emulation root whose stub is refused: %v, want execve: -13 (EACCES)", r)
	}
}

// TestOnceStubRefused: uexec itself in a sandbox that may execute only
// /usr and uexec: --once asks the kernel whether it may execute the stub
// (AT_EXECVE_CHECK) and, refused, execs the program itself, as natively,
// logged "by":"kernel" (without a log it is the refused exec of the stub
// that says so, --verbose tells); the tree cannot work there and says so
// in one line naming the stub and --once (exit 125).
func TestOnceStubRefused(t *testing.T) {
	needRun(t)
	prog := testenv.BuildC(t, "testdata/progs/landlockexec.c")
	allow := "/usr:" + filepath.Dir(uexecBin)
	log := filepath.Join(t.TempDir(), "execs.log")
	r := runCmd(t, "", "/", prog, allow, uexecBin, "run", "--once", "--log-execs", log, "/usr/bin/echo", "hi")
	if r.stdout != "hi\n" || r.status.ExitStatus() != 0 {
		t.Errorf("uexec run --once in the sandbox: %v, want hi", r)
	}
	if b, _ := os.ReadFile(log); !strings.Contains(string(b), `"by":"kernel"`) || !strings.Contains(string(b), "the stub could not be executed (permission denied)") {
		t.Errorf("the exec log: %s", b)
	}
	r = runCmd(t, "", "/", prog, allow, uexecBin, "run", "--once", "--verbose", "/usr/bin/echo", "hi")
	if r.stdout != "hi\n" || r.status.ExitStatus() != 0 || !strings.Contains(r.stderr, "the stub could not be executed (permission denied)") {
		t.Errorf("uexec run --once --verbose without a log in the sandbox: %v, want hi and the note", r)
	}
	r = runCmd(t, "", "/", prog, allow, uexecBin, "run", "--build", "/usr/bin/echo", "hi")
	if r.status.ExitStatus() != 125 || !strings.Contains(r.stderr, "executing the stub") || !strings.Contains(r.stderr, "use --once") {
		t.Errorf("uexec run in the sandbox: %v, want exit 125 naming the stub and --once", r)
	}
}

// TestStubNoexec: where the cache directory and the temporary directory are
// noexec mounts (a hardened /home or /tmp), uexec executes its stub and the
// tree's plans from memfds: --once and the tree build the images, and the
// programs run as natively.
func TestStubNoexec(t *testing.T) {
	needRun(t)
	testenv.NeedRoot(t) // mounts, in a mount namespace of the test's
	unshare := testenv.NeedTool(t, "unshare")
	cache, tmp, logs := t.TempDir(), t.TempDir(), t.TempDir()
	mount := fmt.Sprintf(`mount -t tmpfs -o noexec tmpfs %s && mount -t tmpfs -o noexec tmpfs %s && exec "$@"`, cache, tmp)
	env := append(append([]string{}, testEnv...), "XDG_CACHE_HOME="+cache, "TMPDIR="+tmp)
	script := "/bin/echo inner; ls /proc/self/fd"
	native := runEnv(t, env, unshare, "-m", "sh", "-c", mount, "sh", "/bin/sh", "-c", script)
	if native.status.ExitStatus() != 0 || !strings.HasPrefix(native.stdout, "inner\n") {
		t.Fatalf("natively: %v", native)
	}
	for _, mode := range []string{"--once", "--verbose"} {
		log := filepath.Join(logs, mode)
		under := runEnv(t, env, unshare, "-m", "sh", "-c", mount, "sh", uexecBin, "run", "--build", mode, "--log-execs", log, "/bin/sh", "-c", script)
		if under.stdout != native.stdout || under.status != native.status {
			t.Errorf("uexec run %s: %v\nnatively: %v", mode, under, native)
		}
		b, _ := os.ReadFile(log)
		if strings.Contains(string(b), `"by":"kernel"`) || !strings.Contains(string(b), `"by":"uexec"`) {
			t.Errorf("uexec run %s: the stub built no image, or not every one:\n%s", mode, b)
		}
	}
}

// TestTreeGoSpawns: a Go program whose goroutines run programs with
// os/exec works under `uexec run` as natively. Its vfork children share
// its memory, on a goroutine's stack: a redirect that wrote below the
// child's stack pointer corrupted the goroutine stacks next to it.
func TestTreeGoSpawns(t *testing.T) {
	needRun(t)
	prog := testenv.BuildGo(t, "testdata/progs/gospawn.go")
	compareTree(t, prog, "40")
}

// TestImageAtZero: a loader whose first segment is a bss and whose
// alignment is large is mapped at 0 by root's kernel (its probe of where
// the span goes is that bss at 0). prctl(PR_SET_MM_MAP) refuses mm fields
// below mmap_min_addr, so the kernel execs it, in place (--once) and in a
// tree, and it runs as natively (exit 42). Before, the stub failed at
// PR_SET_MM_MAP and, page 0 being mapped, its own fault did not come: it
// spun.
func TestImageAtZero(t *testing.T) {
	needRun(t)
	exit42 := []byte{0xb8, 60, 0, 0, 0, 0xbf, 42, 0, 0, 0, 0x0f, 0x05} // exit(42)
	f := &testelf.File{Type: elf.ET_DYN, Entry: 0x1000, Progs: []testelf.Prog{
		{Type: elf.PT_LOAD, Flags: elf.PF_R, Vaddr: 0, Memsz: 0x400, Align: 0x1000},
		{Type: elf.PT_LOAD, Flags: elf.PF_R | elf.PF_X, Off: 0x1000, Vaddr: 0x1000, Filesz: 0x100, Memsz: 0x100, Align: 0x40000000},
		{Type: elf.PT_GNU_STACK, Flags: elf.PF_R | elf.PF_W},
	}, Blobs: []testelf.Blob{{Off: 0x1000, Data: exit42}}}
	prog := filepath.Join(t.TempDir(), "atzero")
	if err := os.WriteFile(prog, f.Bytes(), 0o755); err != nil {
		t.Fatal(err)
	}
	if native := runCmd(t, "", "/", prog); native.status.ExitStatus() != 42 {
		t.Fatalf("natively: %v, want exit 42", native)
	}
	if once := runCmd(t, "", "/", uexecBin, "run", "--once", prog); once.status.ExitStatus() != 42 {
		t.Errorf("uexec run --once: %v, want exit 42", once)
	}
	compareTree(t, "/bin/sh", "-c", prog+"; echo status $?")
}

// TestTreeProcSelfLinks: a path that reaches procfs's self through a
// symbolic link (/dev/fd/N, /dev/stdin, a link to /proc/self/exe or to
// /proc/self/cwd) names the caller's own descriptors, binary and cwd, as
// natively, for root's and an ordinary user's uexec; uexec resolved such a
// path as its own process and ran its own descriptors (bash, ld.so) or
// itself. A program file replaced since its exec runs through
// /proc/PID/exe as natively (uexec ran the new file, or failed with ELOOP
// where the link reads "(deleted)").
func TestTreeProcSelfLinks(t *testing.T) {
	needRun(t)
	testenv.NeedRoot(t) // a user to drop to
	dir, bin := sharedUexec(t)
	copyFile(t, "/bin/echo", filepath.Join(dir, "echo"), 0o755)
	os.Symlink("/proc/self/exe", filepath.Join(dir, "me"))
	os.Symlink("/proc/self/cwd", filepath.Join(dir, "cwd"))
	// The last line: a process whose program file was replaced since
	// (an upgrade) runs the one it started with through /proc/PID/exe,
	// whose link names it "(deleted)".
	// Descriptors 10 to 20: numbers uexec has open and numbers it has
	// not (the kernel's walk through uexec's /proc/self gave ENOENT).
	script := fmt.Sprintf(`exec 3</bin/echo; /dev/fd/3 fd; /dev/stdin stdin </bin/echo
for n in $(seq 10 20); do eval "exec $n</bin/echo"; /dev/fd/$n -n $n; eval "exec $n<&-"; done; echo
%[1]s/me -c "echo exe"; cd %[1]s && %[1]s/cwd/echo cwd
/dev/fd/9 nine; echo $?; /proc/thread-self/fd/3 thread-self
d=$(mktemp -d); cp /bin/sleep $d/p; $d/p 30 & p=$!
until [ "$(readlink /proc/$p/exe)" = $d/p ]; do sleep 0.01; done; cp /bin/echo $d/n; mv $d/n $d/p
/proc/$p/exe --version | head -1; kill $p; rm -r $d`, dir)
	for _, prefix := range [][]string{nil, asNobody(t)} {
		native := runCmd(t, "", "/", append(append([]string{}, prefix...), "/bin/bash", "-c", script)...)
		under := runCmd(t, "", "/", append(append([]string{}, prefix...), bin, "run", "/bin/bash", "-c", script)...)
		if !strings.HasPrefix(native.stdout, "fd\nstdin\n1011121314151617181920\nexe\ncwd\n127\nthread-self\nsleep (GNU coreutils)") || native.String() != under.String() {
			t.Errorf("%v: natively:\n%v\nunder uexec run:\n%v", prefix, native, under)
		}
	}
	// An ordinary user's calls in root's tree.
	compareTree(t, append(asNobody(t), "/bin/bash", "-c", script)...)
}

// TestTreeFirstStops: the first program that stops on its own (SIGSTOP or
// SIGTSTP to its pid) stops uexec with the same signal, so that the shell,
// which waits for uexec, sees the job stopped with the program's status
// (147, 148), and SIGCONT to uexec (fg, or to its pid alone) runs the
// program again, as natively; uexec kept running, and the shell waited
// forever.
func TestTreeFirstStops(t *testing.T) {
	needRun(t)
	bash := testenv.NeedTool(t, "bash")
	job := `set -m
RUN sh -c 'kill -STOP $$; echo resumed'; echo st=$?; kill -CONT %1; wait %1; echo end=$?
RUN sh -c 'kill -TSTP $$; echo resumed'; echo st=$?; fg >/dev/null; echo end=$?`
	// Without job control: the stopped job's pid is uexec's (state T, Tl
	// with its threads), and a SIGCONT to that pid alone continues the
	// program.
	bare := `RUN sh -c 'kill -STOP $$; echo resumed' & p=$!
until ps -o stat= -p $p | grep -q ^T; do sleep 0.05; done; echo stopped; kill -CONT $p; wait $p; echo end=$?`
	for _, script := range []string{job, bare} {
		native := runCmd(t, "", "/", "timeout", "20", bash, "-c", strings.ReplaceAll(script, "RUN ", ""))
		under := runCmd(t, "", "/", "timeout", "20", bash, "-c", strings.ReplaceAll(script, "RUN ", uexecBin+" run "))
		if native.stdout != under.stdout || native.status != under.status || native.status.ExitStatus() != 0 {
			t.Errorf("natively:\n%v\nunder uexec run:\n%v", native, under)
		}
	}
}

// TestTreeInsideTree: uexec's tree inside another cannot have a seccomp
// listener of its own (Linux allows one for a process and its ancestors):
// the inner uexec says so in one line naming --once, with exit 125, before
// anything of the program runs (its stub died of SIGSEGV, and so did it);
// --once inside a tree works.
func TestTreeInsideTree(t *testing.T) {
	needRun(t)
	r := runCmd(t, "", "/", uexecBin, "run", "--build", uexecBin, "run", "--build", "/bin/echo", "inner")
	if r.status.ExitStatus() != exitUsage || r.stdout != "" || !strings.Contains(r.stderr, "a seccomp listener already watches this process") ||
		!strings.Contains(r.stderr, "use --once") {
		t.Errorf("uexec run inside a tree: %v, want exit 125 naming the listener and --once", r)
	}
	r = runCmd(t, "", "/", uexecBin, "run", "--build", uexecBin, "run", "--once", "/bin/echo", "inner")
	if r.status.ExitStatus() != 0 || r.stdout != "inner\n" {
		t.Errorf("uexec run --once inside a tree: %v", r)
	}
}

// sharedUexec returns a temporary directory any user may read and a copy
// of uexec in it (uexecBin's directory is root's alone).
func sharedUexec(t *testing.T) (dir, bin string) {
	dir = testenv.SharedTempDir(t)
	bin = filepath.Join(dir, "uexec")
	copyFile(t, uexecBin, bin, 0o755)
	return dir, bin
}

// TestStubMDWE: under memory-deny-write-execute (PR_SET_MDWE, which an exec
// keeps) the stub builds no image (an image may need a mapping both
// writable and executable, which the kernel's exec makes there and
// mprotect refuses): --once has the kernel exec the program in place, as
// natively, and says so in the log; the tree, whose execs are the
// kernel's, runs as natively (its first stub, its launcher's interpreter,
// maps nothing writable and executable: it could not start before); a
// tree that builds (--build) cannot start and says so in one line naming
// --once (exit 125): for root and an ordinary user.
func TestStubMDWE(t *testing.T) {
	needRun(t)
	testenv.NeedRoot(t) // a user to drop to
	dir, bin := sharedUexec(t)
	mdwe := filepath.Join(dir, "mdwe")
	copyFile(t, testenv.BuildC(t, "testdata/progs/mdwe.c"), mdwe, 0o755)
	for _, user := range [][]string{nil, asNobody(t)} {
		run := func(argv ...string) result {
			return runCmd(t, "", "/", append(append(append([]string{}, user...), mdwe), argv...)...)
		}
		native := run("/bin/sh", "-c", "/bin/echo hi")
		if native.stdout != "hi\n" || native.status.ExitStatus() != 0 {
			t.Fatalf("natively under MDWE: %v", native)
		}
		r := run(bin, "run", "--once", "--log-execs", "-", "/bin/sh", "-c", "/bin/echo hi")
		// An ordinary user's --once is the kernel's anyway (/proc/PID/exe).
		if r.stdout != native.stdout || r.status != native.status || !strings.Contains(r.stderr, `"by":"kernel"`) ||
			user == nil && !strings.Contains(r.stderr, "PR_SET_MDWE") {
			t.Errorf("%v: uexec run --once under MDWE: %v", user, r)
		}
		r = run(bin, "run", "--log-execs", "-", "/bin/sh", "-c", "/bin/echo hi")
		lines, rest := splitLog(r.stderr)
		echo := false
		for _, l := range lines {
			echo = echo || strings.Contains(l, `"path":"/bin/echo"`) && strings.Contains(l, `"by":"kernel"`)
		}
		if r.stdout != native.stdout || r.status != native.status || rest != "" || !echo {
			t.Errorf("%v: uexec run under MDWE: %v, want the program's output and /bin/echo's exec logged as the kernel's", user, r)
		}
		r = run(bin, "run", "--build", "/bin/echo", "hi")
		if r.status.ExitStatus() != exitUsage || r.stdout != "" || !strings.Contains(r.stderr, "PR_SET_MDWE") || !strings.Contains(r.stderr, "use --once") {
			t.Errorf("%v: uexec run --build under MDWE: %v, want exit 125 naming PR_SET_MDWE and --once", user, r)
		}
	}
}

// TestTreeTinyLimits: a caller whose RLIMIT_STACK or RLIMIT_DATA leaves
// (nearly) no room for the stub ends, with what the kernel's exec gives
// for the stack (the program runs or dies of SIGSEGV, by where ASLR put
// the stack: both happen natively), and with SIGSEGV for the data limit,
// where the kernel runs a program that needs no data (README, Known
// limits). uexec spun forever: it held back the fault's SIGSEGV as a
// signal sent during the redirect, and the instruction faulted again.
func TestTreeTinyLimits(t *testing.T) {
	needRun(t)
	prlimit := testenv.NeedTool(t, "prlimit")
	hi := testenv.BuildC(t, "testdata/progs/hinolibc.s", "-nostdlib", "-static")
	for _, limit := range []string{"--stack=4096", "--data=0"} {
		for range 5 {
			r := runCmd(t, "", "/", "timeout", "-k1", "20", uexecBin, "run", "--build", prlimit, limit, hi)
			ran := r.status.ExitStatus() == 0 && r.stdout == "hi\n"
			if !ran && r.status.Signal() != syscall.SIGSEGV {
				t.Fatalf("%s: uexec run: %v, want the program's output or SIGSEGV (not a hang)", limit, r)
			}
		}
	}
}

// TestRunNotDumpable: uexec started with an effective uid that is not its
// real one (a set-id program's exec of it: not dumpable, so /proc/self/auxv
// is root's, mode 0400) runs the program as natively, tree and --once; it
// failed with EACCES reading its aux vector.
func TestRunNotDumpable(t *testing.T) {
	needRun(t)
	testenv.NeedRoot(t) // an effective uid to take
	setpriv := testenv.NeedTool(t, "setpriv")
	dir, bin := sharedUexec(t)
	hi := filepath.Join(dir, "hi")
	copyFile(t, testenv.BuildC(t, "testdata/progs/hinolibc.s", "-nostdlib", "-static"), hi, 0o755)
	for _, mode := range [][]string{{"run", "--once"}, {"run"}} {
		r := runCmd(t, "", "/", append(append([]string{setpriv, "--euid", "65534", "--", bin}, mode...), hi)...)
		if r.stdout != "hi\n" || r.status.ExitStatus() != 0 {
			t.Errorf("uexec %v with euid 65534: %v", mode, r)
		}
	}
}

// TestTreeChrootCaller: a chroot'ed caller's execs are resolved in its
// root (a program only there runs; a missing file is ENOENT), as natively,
// and the log names its cwd as it sees it.
func TestTreeChrootCaller(t *testing.T) {
	needRun(t)
	chroot := testenv.NeedTool(t, "chroot")
	runner := testenv.BuildC(t, mustAbs(t, "testdata/progs/chexec.c"), "-static")
	hello := testenv.BuildC(t, mustAbs(t, "testdata/progs/hello.c"), "-static")
	root := t.TempDir()
	only := "/bin/uexec-chroot-hello" // in the root alone
	copyFile(t, runner, filepath.Join(root, "bin/runner"), 0o755)
	copyFile(t, hello, filepath.Join(root, only), 0o755)
	argv := []string{chroot, root, "/bin/runner", only, "a"}
	native := runCmd(t, "", "/", argv...)
	if !strings.Contains(native.stdout, "hello tls=42 argc=2") || !strings.Contains(native.stdout, "execv missing: No such file") {
		t.Fatalf("natively: %v", native)
	}
	for _, mode := range treeModes {
		log := filepath.Join(t.TempDir(), "log")
		under := runCmd(t, "", "/", append(append([]string{uexecBin, "run", "--log-execs", log}, mode.args...), argv...)...)
		if under.String() != native.String() {
			t.Errorf("%s: native:\n%v\nuexec:\n%v", mode.name, native, under)
		}
		found := false
		for _, l := range readExecLog(t, log) {
			if l.Path != only {
				continue
			}
			found = true
			if l.By != "kernel" || !strings.Contains(l.Note, "root of its own") || l.Cwd != "/" {
				t.Errorf("%s: logged as %+v", mode.name, l)
			}
		}
		if !found {
			t.Errorf("%s: no line of %s in the log", mode.name, only)
		}
	}
}
