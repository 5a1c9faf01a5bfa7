package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/uexec/uexec/internal/testenv"
)

// pfSuperpriv is the task flag of a process that used a capability
// (include/linux/sched.h), field 9 of /proc/PID/stat.
const pfSuperpriv = 0x100

// TestTreeKernelByDefault: in root's tree without rules or policies the
// kernel does every exec whose plan is its own, so that what only the
// kernel's exec gives is native (PF_SUPERPRIV clear, /proc/self/exe);
// --build has uexec's stub build them, with the difference the README
// names; a binfmt rule or a stop at exec in the tree makes uexec build
// every exec again, matched or not.
func TestTreeKernelByDefault(t *testing.T) {
	needRun(t)
	script := `cut -d" " -f9 /proc/self/stat; readlink /proc/self/exe`
	native := runCmd(t, "", "/", "/bin/sh", "-c", script)
	if native.status != 0 {
		t.Fatalf("natively: %v", native)
	}
	flags := func(r result) (uint64, string) {
		t.Helper()
		f, rest, _ := strings.Cut(r.stdout, "\n")
		n, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			t.Fatalf("flags %q: %v (%v)", f, err, r)
		}
		return n, rest
	}
	nFlags, nExe := flags(native)
	for _, mode := range treeModes {
		t.Run(mode.name, func(t *testing.T) {
			log := filepath.Join(t.TempDir(), "log")
			argv := append(append([]string{uexecBin, "run", "--log-execs", log}, mode.args...), "/bin/sh", "-c", script)
			under := runCmd(t, "", "/", argv...)
			uFlags, uExe := flags(under)
			want := nFlags
			if mode.by == "uexec" {
				want |= pfSuperpriv // README, Differences: PF_SUPERPRIV
			}
			if uFlags != want || uExe != nExe {
				t.Errorf("flags %#x, exe %q; want %#x, %q (natively %#x)", uFlags, uExe, want, nExe, nFlags)
			}
			// The first program itself: its stub installed the filter
			// with CAP_SYS_ADMIN, and forks the program's process
			// where the kernel execs it, which clears the flag.
			first := runCmd(t, "", "/", append(append([]string{uexecBin, "run"}, mode.args...), "/usr/bin/cut", "-d", " ", "-f9", "/proc/self/stat")...)
			if f, _ := flags(first); f != want {
				t.Errorf("the first program's flags %#x, want %#x (natively %#x)", f, want, nFlags)
			}
			lines := readExecLog(t, log)
			if len(lines) != 3 {
				t.Errorf("%d exec lines, want sh, cut and readlink: %+v", len(lines), lines)
			}
			for _, l := range lines {
				if l.By != mode.by {
					t.Errorf("by %s, want %s: %+v", l.By, mode.by, l)
				}
				if mode.by == "kernel" && (l.Result != "kernel" || !strings.Contains(l.Note, "the plan is its own exec")) {
					t.Errorf("a kernel's exec logged as %+v", l)
				}
				if len(l.Chain) == 0 {
					t.Errorf("no plan in the log: %+v", l)
				}
			}
		})
	}
	verbose := runCmd(t, "", "/", uexecBin, "run", "--verbose", "/bin/true")
	if !strings.Contains(verbose.stderr, "uexec: note: exact by the kernel: the plan is its own exec") {
		t.Errorf("--verbose does not say the kernel does the exec:\n%s", verbose.stderr)
	}
	// --verbose says who made each exec, the first program's own too.
	for _, mode := range treeModes {
		r := runCmd(t, "", "/", append(append([]string{uexecBin, "run", "--verbose"}, mode.args...), "/bin/sh", "-c", "/bin/true; exec /bin/echo x")...)
		want := ": exec left to the kernel: "
		if mode.by == "uexec" {
			want = ": built by uexec"
		}
		for _, prog := range []string{"/bin/true", "/bin/echo"} {
			if !strings.Contains(r.stderr, prog+want) {
				t.Errorf("%s: --verbose does not say %q of %s:\n%s", mode.name, want, prog, r.stderr)
			}
		}
	}
	// Something of uexec's in the tree: uexec builds, matched or not.
	for _, opt := range [][]string{{"--binfmt", ":nomatch:E::uexec-nomatch::/bin/false:"}, {"--stop-at-exec", "/uexec-nomatch*"}} {
		log := filepath.Join(t.TempDir(), "log")
		r := runCmd(t, "", "/", append(append([]string{uexecBin, "run", "--log-execs", log}, opt...), "/bin/sh", "-c", "/bin/true")...)
		if r.status != 0 {
			t.Errorf("%v: %v", opt, r)
		}
		for _, l := range readExecLog(t, log) {
			if l.By != "uexec" {
				t.Errorf("with %v: by %s: %+v", opt, l.By, l)
			}
		}
	}
}

// TestTreeSetIDByKernelNote: a set-uid-root program run by a caller of
// root's tree that dropped its ids is the kernel's exec, which raises the
// ids; its log line must not say they were not applied (the plan, which
// uexec could not give them, did).
func TestTreeSetIDByKernelNote(t *testing.T) {
	needRun(t)
	setpriv := testenv.NeedTool(t, "setpriv")
	ids := testenv.BuildC(t, "testdata/progs/ids.c")
	dir := testenv.SharedTempDir(t)
	prog := filepath.Join(dir, "ids-root")
	copyFile(t, ids, prog, 0o755|os.ModeSetuid)
	argv := []string{setpriv, "--reuid", "65534", "--regid", "65534", "--clear-groups", "--", prog}
	native := runCmd(t, "", "/", argv...)
	if !strings.HasPrefix(native.stdout, "uid 65534 0 0 ") {
		t.Fatalf("natively: %v", native)
	}
	for _, mode := range treeModes {
		log := filepath.Join(t.TempDir(), "log")
		under := runCmd(t, "", "/", append(append([]string{uexecBin, "run", "--log-execs", log}, mode.args...), argv...)...)
		if under.stdout != native.stdout {
			t.Errorf("%s: %q, natively %q", mode.name, under.stdout, native.stdout)
		}
		for _, l := range readExecLog(t, log) {
			if l.Path == prog && (l.By != "kernel" || strings.Contains(l.Note, "not applied")) {
				t.Errorf("%s: logged as %+v", mode.name, l)
			}
		}
	}
}

// TestFirstStubExeNote: an ordinary user's first program built by the stub
// (a binfmt rule matched) is logged with why /proc/PID/exe names the stub,
// as the tree's own execs of it are.
func TestFirstStubExeNote(t *testing.T) {
	needRun(t)
	dir, bin := sharedUexec(t)
	script := filepath.Join(dir, "t.uexectest")
	writeFile(t, script, "echo ran\n", 0o755)
	rule := ":uexectest:E::uexectest::/bin/sh:"
	r := runCmd(t, "", "/", append(asNobody(t), bin, "run", "--binfmt", rule, "--log-execs", "-", "/bin/sh", "-c", script+"; exec "+script)...)
	if r.stdout != "ran\nran\n" {
		t.Fatalf("%v", r)
	}
	lines := 0
	for _, l := range strings.Split(r.stderr, "\n") {
		if strings.Contains(l, `"path":"`+script+`"`) {
			lines++
			if !strings.Contains(l, `"by":"uexec"`) || !strings.Contains(l, "/proc/PID/exe names the stub") {
				t.Errorf("logged as %s", l)
			}
		}
	}
	first := runCmd(t, "", "/", append(asNobody(t), bin, "run", "--binfmt", rule, "--log-execs", "-", script)...)
	if !strings.Contains(first.stderr, `"by":"uexec"`) || !strings.Contains(first.stderr, "/proc/PID/exe names the stub") {
		t.Errorf("the first program logged as %s", first.stderr)
	}
	if lines != 2 {
		t.Errorf("%d lines of the script's execs, want 2:\n%s", lines, r.stderr)
	}
}
