package main

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/internal/testelf"
	"github.com/uexec/uexec/internal/testenv"
)

// TestRunDescriptors checks that the program gets exactly the descriptors
// a kernel exec would leave it: the caller's without FD_CLOEXEC, none of
// uexec's own.
func TestRunDescriptors(t *testing.T) {
	needRun(t)
	list := func(argv ...string) string {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		extra, err := os.Open("/dev/null")
		if err != nil {
			t.Fatal(err)
		}
		defer extra.Close()
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = testEnv
		cmd.Stdout = w
		// Descriptors 3 and 4 reach the program without FD_CLOEXEC.
		cmd.ExtraFiles = []*os.File{extra, extra}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		w.Close()
		out, _ := io.ReadAll(r)
		cmd.Wait()
		return string(out)
	}
	// The shell lists its descriptors and where they point.
	script := `for f in /proc/$$/fd/*; do printf '%s %s\n' "${f##*/}" "$(readlink $f)"; done`
	native := list("/bin/bash", "-c", script)
	under := list(uexecBin, "run", "--build", "/bin/bash", "-c", script)
	norm := func(s string) string {
		var out []string
		for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
			// Pipes differ by inode between the runs.
			if i := strings.Index(l, "pipe:["); i > 0 {
				l = l[:i] + "pipe"
			}
			out = append(out, l)
		}
		return strings.Join(out, "\n")
	}
	if norm(native) != norm(under) {
		t.Errorf("descriptors differ\nnative:\n%s\nunder uexec:\n%s", native, under)
	}
}

// TestRunTerminal runs a program on a terminal: it reads from it and sees
// it as its controlling terminal.
func TestRunTerminal(t *testing.T) {
	needRun(t)
	run := func(argv ...string) string {
		master, slave, n := openPty(t)
		defer master.Close()
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = testEnv
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		slave.Close()
		master.Write([]byte("typed\n"))
		var out bytes.Buffer
		done := make(chan struct{})
		go func() { io.Copy(&out, master); close(done) }()
		werr := make(chan error, 1)
		go func() { werr <- cmd.Wait() }()
		select {
		case <-werr:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			t.Fatal("program on the terminal did not end")
		}
		master.Close()
		<-done
		// The terminal echoes "typed" whenever the input arrives: drop the
		// echo, whose place among the program's lines is a race.
		var lines []string
		for _, l := range strings.Split(out.String(), "\r\n") {
			if l != "typed" {
				lines = append(lines, l)
			}
		}
		return strings.ReplaceAll(strings.Join(lines, "\r\n"), "/dev/pts/"+itoaU(n), "/dev/pts/N")
	}
	// A shell leads the terminal's session and starts the program, as
	// when a user types the command; "; true" keeps it from exec'ing
	// the command in its place.
	script := `test -t 0 && echo stdin-is-tty; tty; read x; echo "read $x"; ps -o stat= -p $$`
	native := run("/bin/sh", "-c", "/bin/sh -c '"+script+"'; true")
	under := run("/bin/sh", "-c", uexecBin+" run /bin/sh -c '"+script+"'; true")
	if native != under {
		t.Errorf("on a terminal:\nnative: %q\nunder uexec: %q", native, under)
	}
	if !strings.Contains(native, "read typed") {
		t.Errorf("native run did not read from the terminal: %q", native)
	}
}

func itoaU(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

// TestRunSetID compares the credentials a set-id program gets natively and
// under uexec, as root, on a normal and a nosuid mount, and with
// no_new_privs.
func TestRunSetID(t *testing.T) {
	testenv.NeedRoot(t)
	ids := testenv.BuildC(t, "testdata/progs/ids.c")
	dir := testenv.SharedTempDir(t)
	install := func(dir string) string {
		b, err := os.ReadFile(ids)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, "ids")
		if err := os.WriteFile(p, b, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, 0o755|os.ModeSetuid|os.ModeSetgid); err != nil {
			t.Fatal(err)
		}
		return p
	}
	setid := install(dir)
	nosuidDir := t.TempDir()
	if err := unix.Mount("tmpfs", nosuidDir, "tmpfs", unix.MS_NOSUID, "size=4m,mode=755"); err != nil {
		testenv.Need(t, false, "mount tmpfs: %v", err)
	}
	defer unix.Unmount(nosuidDir, unix.MNT_DETACH)
	nosuid := install(nosuidDir)
	setpriv := testenv.NeedTool(t, "setpriv")
	for _, tc := range []struct {
		name   string
		prefix []string
		prog   string
		want   string
	}{
		{"set-id", nil, setid, "uid 0 65534 65534 gid 0 65534 65534 secure 1"},
		{"nosuid mount", nil, nosuid, "uid 0 0 0 gid 0 0 0 secure 0"},
		{"no_new_privs", []string{setpriv, "--no-new-privs"}, setid, "uid 0 0 0 gid 0 0 0 secure 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			native := runCmd(t, "", "/", append(tc.prefix, tc.prog)...)
			under := runCmd(t, "", "/", append(tc.prefix, uexecBin, "run", "--build", tc.prog)...)
			if strings.TrimSpace(native.stdout) != tc.want {
				t.Errorf("native: %q, want %q", native.stdout, tc.want)
			}
			if native.stdout != under.stdout {
				t.Errorf("native %q, under uexec %q (stderr %q)", native.stdout, under.stdout, under.stderr)
			}
		})
	}
}

// TestRunSetIDPersonality: a set-id exec clears the caller's personality
// flags (PER_CLEAR_ON_SETID: ADDR_NO_RANDOMIZE, ADDR_COMPAT_LAYOUT,
// READ_IMPLIES_EXEC, MMAP_PAGE_ZERO), even when the ids stay (root running
// a set-uid-root file), and a secure one lowers RLIMIT_STACK to 8 MiB, both
// before the image is laid out. The program sees what it sees natively, as
// an exec of the tree, as the tree's first program and with --once.
func TestRunSetIDPersonality(t *testing.T) {
	testenv.NeedRoot(t)
	setarch := testenv.NeedTool(t, "setarch")
	dir := testenv.SharedTempDir(t)
	install := func(name string, uid int) string {
		p := filepath.Join(dir, name)
		copyFile(t, "/bin/cat", p, 0o755)
		if err := os.Chown(p, uid, uid); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, 0o755|os.ModeSetuid); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rootcat, nobodycat := install("rootcat", 0), install("nobodycat", 65534)
	check := func(name string, native result, under ...result) {
		t.Helper()
		for i, u := range under {
			if u.String() != native.String() {
				t.Errorf("%s, way %d:\nnatively: %v\nunder uexec: %v", name, i, native, u)
			}
		}
	}
	for _, flag := range []string{"-R", "-L", "-X", "-Z", "-RL"} {
		native := runCmd(t, "", "/", setarch, flag, rootcat, "/proc/self/personality")
		if strings.TrimSpace(native.stdout) != "00000000" {
			t.Errorf("natively, setarch %s: %v, want 00000000", flag, native)
		}
		check("setarch "+flag,
			native,
			runCmd(t, "", "/", uexecBin, "run", "--build", setarch, flag, rootcat, "/proc/self/personality"),
			runCmd(t, "", "/", setarch, flag, uexecBin, "run", "--build", rootcat, "/proc/self/personality"),
			runCmd(t, "", "/", setarch, flag, uexecBin, "run", "--once", rootcat, "/proc/self/personality"))
	}
	limit := func(argv ...string) result {
		r := runCmd(t, "", "/", append([]string{"/bin/sh", "-c", `ulimit -s 100000; exec "$@" | grep "Max stack size"`, "sh"}, argv...)...)
		return r
	}
	native := limit(nobodycat, "/proc/self/limits")
	if !strings.Contains(native.stdout, " 8388608 ") {
		t.Errorf("natively: %v, want a soft stack limit of 8388608", native)
	}
	check("ulimit -s 100000", native,
		limit(uexecBin, "run", "--build", "/bin/sh", "-c", `exec "$@"`, "sh", nobodycat, "/proc/self/limits"),
		limit(uexecBin, "run", "--build", nobodycat, "/proc/self/limits"),
		limit(uexecBin, "run", "--once", nobodycat, "/proc/self/limits"))
}

// TestRunFileCaps: a copy of cat with cap_dac_read_search+ep read by a
// caller that is not root. In root's tree, a caller that holds
// CAP_SYS_ADMIN (so that the stub could make its /proc/PID/exe) still has
// the kernel make the exec, which alone gives the file's capabilities: it
// reads /etc/shadow as natively. In an ordinary user's tree (no_new_privs)
// the capabilities are not applied, as natively under no_new_privs, and the
// exec log says so.
func TestRunFileCaps(t *testing.T) {
	testenv.NeedRoot(t)
	setcap := testenv.NeedTool(t, "setcap")
	setpriv := testenv.NeedTool(t, "setpriv")
	dir := testenv.SharedTempDir(t)
	capcat := filepath.Join(dir, "capcat")
	copyFile(t, "/bin/cat", capcat, 0o755)
	if r := runCmd(t, "", "/", setcap, "cap_dac_read_search+ep", capcat); r.status.ExitStatus() != 0 {
		testenv.Need(t, false, "setcap: %v", r)
	}
	admin := []string{setpriv, "--reuid", "65534", "--regid", "65534", "--clear-groups",
		"--inh-caps", "+sys_admin", "--ambient-caps", "+sys_admin", "--", capcat, "/etc/shadow"}
	native := runCmd(t, "", "/", admin...)
	if native.status.ExitStatus() != 0 || !strings.HasPrefix(native.stdout, "root:") {
		t.Fatalf("natively: %v", native)
	}
	log := filepath.Join(dir, "root.log")
	under := runCmd(t, "", "/", append([]string{uexecBin, "run", "--build", "--log-execs", log}, admin...)...)
	if under.String() != native.String() {
		t.Errorf("in root's tree:\n%v\nnatively:\n%v", under, native)
	}
	if b, _ := os.ReadFile(log); !strings.Contains(string(b), `"note":"file capabilities: only the kernel's exec gives them`) {
		t.Errorf("root's tree's log:\n%s", b)
	}

	user := []string{setpriv, "--reuid", "65534", "--regid", "65534", "--clear-groups", "--"}
	native = runCmd(t, "", "/", append(append(user, setpriv, "--no-new-privs", "--"), capcat, "/etc/shadow")...)
	log = filepath.Join(dir, "user.log")
	os.WriteFile(log, nil, 0o666)
	os.Chmod(log, 0o666)
	under = runCmd(t, "", "/", append(user, uexecBin, "run", "--build", "--log-execs", log, "/bin/sh", "-c", `exec "$@"`, "sh", capcat, "/etc/shadow")...)
	if under.String() != native.String() || native.status.ExitStatus() == 0 {
		t.Errorf("in an ordinary user's tree:\n%v\nnatively under no_new_privs:\n%v", under, native)
	}
	if b, _ := os.ReadFile(log); !strings.Contains(string(b), "file capabilities not applied: no_new_privs") {
		t.Errorf("the ordinary user's tree's log:\n%s", b)
	}
}

// TestRunLegacyLayout: under ADDR_COMPAT_LAYOUT (setarch -L) the kernel
// lays the image out bottom-up from TASK_UNMAPPED_BASE (the interpreter, a
// static-pie program, the vdso); with ASLR off every mapping and mm field
// is the same under uexec, for the tree's first program, an exec of the
// tree and --once.
func TestRunLegacyLayout(t *testing.T) {
	needRun(t)
	setarch := testenv.NeedTool(t, "setarch")
	for _, mode := range [][]string{nil, {"-static"}, {"-static-pie"}} {
		prog := testenv.BuildC(t, "testdata/progs/showmaps.c", mode...)
		t.Run(fmt.Sprint(mode), func(t *testing.T) {
			native := runCmd(t, "", "/", setarch, "-L", "-R", prog)
			if !strings.Contains(native.stdout, "2aaaaaa") {
				t.Fatalf("natively nothing at TASK_UNMAPPED_BASE:\n%v", native)
			}
			for _, argv := range [][]string{
				{setarch, "-L", "-R", uexecBin, "run", "--build", prog},
				{uexecBin, "run", "--build", setarch, "-L", "-R", prog},
				{setarch, "-L", "-R", uexecBin, "run", "--once", prog},
			} {
				if under := runCmd(t, "", "/", argv...); under.String() != native.String() {
					t.Errorf("%q: native (-) and uexec (+) differ:\n%s", argv, testenv.LineDiff(native.String(), under.String()))
				}
			}
		})
	}
	// With ASLR, the vdso still comes right above the interpreter, where
	// the kernel maps it next (bottom-up).
	prog := testenv.BuildC(t, "testdata/progs/showmaps.c")
	vdsoAboveInterp := func(maps string) bool {
		lines := strings.Split(maps, "\n")
		for i := len(lines) - 2; i >= 0; i-- {
			if strings.Contains(lines[i], "/ld-linux") {
				return strings.HasSuffix(lines[i+1], "[vvar]")
			}
		}
		return false
	}
	for _, argv := range [][]string{
		{setarch, "-L", prog},
		{setarch, "-L", uexecBin, "run", "--once", prog},
		{uexecBin, "run", "--build", setarch, "-L", prog},
	} {
		if r := runCmd(t, "", "/", argv...); !vdsoAboveInterp(r.stdout) {
			t.Errorf("%q: the vdso is not right above the interpreter:\n%v", argv, r)
		}
	}
}

// TestRunUnprivileged runs uexec as an ordinary user: programs run; a
// set-id program keeps the caller's ids with AT_SECURE set, as the kernel
// does for a traced exec, and --verbose says why.
func TestRunUnprivileged(t *testing.T) {
	testenv.NeedRoot(t)
	ids := testenv.BuildC(t, "testdata/progs/ids.c")
	dir := testenv.SharedTempDir(t)
	b, _ := os.ReadFile(ids)
	setid := filepath.Join(dir, "ids")
	os.WriteFile(setid, b, 0o755)
	os.Chmod(setid, 0o755|os.ModeSetuid)
	bin := filepath.Join(dir, "uexec")
	ub, _ := os.ReadFile(uexecBin)
	os.WriteFile(bin, ub, 0o755)
	asNobody := func(argv ...string) result {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = testEnv
		cmd.Dir = "/"
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		cmd.Run()
		return result{o.String(), e.String(), cmd.ProcessState.Sys().(syscall.WaitStatus)}
	}
	echo := asNobody(bin, "run", "/bin/echo", "hello")
	if echo.stdout != "hello\n" || echo.status.ExitStatus() != 0 {
		t.Fatalf("unprivileged run: %v", echo)
	}
	// An ordinary user's tree runs under no_new_privs (its seccomp filter
	// needs it): set-id bits are ignored, as natively under setpriv
	// --no-new-privs. With --once the kernel execs the program in place,
	// which then gets its ids as natively.
	setpriv := testenv.NeedTool(t, "setpriv")
	nnp := asNobody(setpriv, "--no-new-privs", setid)
	under := asNobody(bin, "run", "--verbose", setid)
	if want := "uid 65534 65534 65534 gid 65534 65534 65534 secure 0\n"; nnp.stdout != want {
		t.Errorf("native exec under no_new_privs as nobody: %q, want %q", nnp.stdout, want)
	}
	if under.stdout != nnp.stdout {
		t.Errorf("under uexec %q, native under no_new_privs %q", under.stdout, nnp.stdout)
	}
	native, once := asNobody(setid), asNobody(bin, "run", "--once", setid)
	if once.stdout != native.stdout || !strings.Contains(native.stdout, "uid 65534 0 0") {
		t.Errorf("--once %q, natively %q", once.stdout, native.stdout)
	}
	for _, want := range []string{"no_new_privs", "/proc/PID/exe", "set-id bits of " + setid + " not applied: no_new_privs"} {
		if !strings.Contains(under.stderr, want) {
			t.Errorf("--verbose does not mention %s: %q", want, under.stderr)
		}
	}
	// The exec log says it when it happens: the set-id exec of a tree's
	// process by the kernel, its bits not applied (no_new_privs).
	log := filepath.Join(dir, "execs.log")
	os.WriteFile(log, nil, 0o666)
	os.Chmod(log, 0o666)
	asNobody(bin, "run", "--log-execs", log, "/bin/sh", "-c", setid)
	lb, _ := os.ReadFile(log)
	var line string
	for _, l := range strings.Split(string(lb), "\n") {
		if strings.Contains(l, `"path":"`+setid+`"`) {
			line = l
		}
	}
	if !strings.Contains(line, `"by":"kernel"`) || !strings.Contains(line, "set-id bits not applied: no_new_privs") {
		t.Errorf("the set-id exec in the tree logged as %q, want by the kernel, set-id bits not applied: no_new_privs", line)
	}
}

// TestRunSignalState starts uexec with signals blocked and ignored and
// checks that the program inherits them as from a kernel exec. (Only the
// signals the Go runtime leaves alone before uexec's main can be checked:
// see the README's limits.)
func TestRunSignalState(t *testing.T) {
	needRun(t)
	py := testenv.NeedTool(t, "python3")
	launch := func(argv ...string) string {
		code := "import os, signal, sys\n" +
			"signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH})\n" +
			"signal.signal(signal.SIGINT, signal.SIG_IGN)\n" +
			"signal.signal(signal.SIGHUP, signal.SIG_IGN)\n" +
			"signal.signal(signal.SIGPIPE, signal.SIG_DFL)\n" +
			"signal.signal(signal.SIGXFSZ, signal.SIG_DFL)\n" +
			"os.execv(sys.argv[1], sys.argv[1:])\n"
		r := runCmd(t, "", "/", append([]string{py, "-c", code}, argv...)...)
		var keep []string
		for _, l := range strings.Split(r.stdout, "\n") {
			if strings.HasPrefix(l, "SigBlk") || strings.HasPrefix(l, "SigIgn") || strings.HasPrefix(l, "SigCgt") {
				keep = append(keep, l)
			}
		}
		return strings.Join(keep, "\n")
	}
	native := launch("/bin/cat", "/proc/self/status")
	under := launch(uexecBin, "run", "--build", "/bin/cat", "/proc/self/status")
	if !strings.Contains(native, "SigBlk:\t0000000008000a00") || !strings.Contains(native, "SigIgn:\t0000000000000003") {
		t.Fatalf("the launcher did not set up the signals:\n%s", native)
	}
	if native != under {
		t.Errorf("signal state differs\nnative:\n%s\nunder uexec:\n%s", native, under)
	}
}

// TestRunFatal runs ELF files that Linux accepts up to the point of no
// return and then kills with SIGSEGV: uexec run ends the same way, and
// uexec plan says why. An ELF without PT_LOAD is exec'd (Linux 6.18) and
// dies of SIGSEGV at its entry: the plan is not fatal, the run still ends
// with SIGSEGV.
func TestRunFatal(t *testing.T) {
	needRun(t)
	dir := t.TempDir()
	bad := testelf.Static64()
	bad.Progs[1].Filesz = 0x4000 // p_filesz > p_memsz
	badPath := filepath.Join(dir, "filesz")
	os.WriteFile(badPath, bad.Bytes(), 0o755)
	noLoad := &testelf.File{Type: elf.ET_DYN, Entry: 0x1000, Progs: []testelf.Prog{{Type: elf.PT_GNU_STACK, Flags: elf.PF_R | elf.PF_W}}}
	noLoadPath := filepath.Join(dir, "noload")
	os.WriteFile(noLoadPath, noLoad.Bytes(), 0o755)
	off := testelf.Static64()
	off.Progs[1].Off += 1 << 63 // file_mmap_ok: EOVERFLOW
	off.Progs[1].Data = nil
	offPath := filepath.Join(dir, "offset")
	os.WriteFile(offPath, off.Bytes(), 0o755)
	for _, prog := range []string{badPath, noLoadPath, offPath} {
		t.Run(filepath.Base(prog), func(t *testing.T) {
			wantFatal := prog != noLoadPath
			native := runCmd(t, "", dir, prog)
			under := runCmd(t, "", dir, uexecBin, "run", "--build", prog)
			if !native.status.Signaled() || native.status.Signal() != syscall.SIGSEGV {
				t.Fatalf("native: %v, want SIGSEGV", native)
			}
			if under.status != native.status || under.stdout != "" || under.stderr != "" {
				t.Errorf("under uexec: %v, want the native SIGSEGV and no output", under)
			}
			out, _, code := runCLI(t, "plan", "--json", prog)
			var j planJSON
			if err := json.Unmarshal([]byte(out), &j); err != nil {
				t.Fatal(err)
			}
			if code != 0 || (j.Fatal != nil) != wantFatal || (wantFatal && j.Fatal.Signal != "SIGSEGV") {
				t.Errorf("plan: exit %d fatal %+v, want fatal %v", code, j.Fatal, wantFatal)
			}
		})
	}
}
