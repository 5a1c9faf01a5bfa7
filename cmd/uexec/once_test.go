package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uexec/uexec/internal/testenv"
)

// TestOnceInPlace: with --once uexec execs in place, so the program is
// the process its caller started: same pid, parent, process group and
// session.
func TestOnceInPlace(t *testing.T) {
	needRun(t)
	ids := `echo $$ $PPID $(ps -o pgid= -o sid= -p $$)`
	r := runCmd(t, "", "", "/bin/sh", "-c", ids+"; exec "+uexecBin+" run --once /bin/sh -c '"+ids+"'")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.status != 0 || len(lines) != 2 {
		t.Fatalf("%v", r)
	}
	if strings.Join(strings.Fields(lines[0]), " ") != strings.Join(strings.Fields(lines[1]), " ") {
		t.Errorf("pid ppid pgid sid: %q natively, %q under uexec --once", lines[0], lines[1])
	}
}

// TestOnceLeavesNoChild: the program exec'd in place starts with no
// child, as natively (nothing uexec or the stub started is left for it to
// reap), traced by strace -f or not.
func TestOnceLeavesNoChild(t *testing.T) {
	needRun(t)
	prog := testenv.BuildC(t, "testdata/progs/children.c")
	want := "children=[] wait=-1 errno=10\n" // ECHILD
	if r := runCmd(t, "", "", prog); r.stdout != want {
		t.Fatalf("natively: %v", r)
	}
	strace := testenv.NeedTool(t, "strace")
	for _, pre := range [][]string{nil, {strace, "-f", "-o", "/dev/null"}} {
		r := runCmd(t, "", "", append(append([]string{}, pre...), uexecBin, "run", "--once", prog)...)
		if r.status != 0 || r.stdout != want {
			t.Errorf("%q --once: %v, want %q", pre, r, want)
		}
	}
}

// TestOnceWithoutPtrace: --once needs no ptrace: it works under strace -f,
// under gdb, and under a seccomp filter that makes ptrace fail.
func TestOnceWithoutPtrace(t *testing.T) {
	needRun(t)
	noptrace := testenv.BuildC(t, "testdata/progs/noptrace.c")
	strace := testenv.NeedTool(t, "strace")
	gdb := testenv.NeedTool(t, "gdb")
	for _, tc := range []struct {
		name string
		pre  []string
	}{
		{"strace -f", []string{strace, "-f", "-o", "/dev/null"}},
		{"gdb", []string{gdb, "-batch", "-nx", "-ex", "run", "--args"}},
		{"ptrace denied", []string{noptrace}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			argv := append(append([]string{}, tc.pre...), uexecBin, "run", "--once", "/bin/sh", "-c", "echo ok; ls -d /; exit 3")
			r := runCmd(t, "", "", argv...)
			if !strings.Contains(r.stdout, "ok\n") || !strings.Contains(r.stdout, "/\n") {
				t.Errorf("%v", r)
			}
			if tc.name != "gdb" && r.status.ExitStatus() != 3 {
				t.Errorf("exit status %d, want 3\n%v", r.status.ExitStatus(), r)
			}
			if tc.name == "gdb" && !strings.Contains(r.stdout, "exited with code 03") {
				t.Errorf("gdb did not see the program exit with 3:\n%v", r)
			}
		})
	}
}

// TestTreeWithoutPtrace: where tree mode cannot intercept, uexec says so in
// one line, names --once, and exits 125.
func TestTreeWithoutPtrace(t *testing.T) {
	needRun(t)
	noptrace := testenv.BuildC(t, "testdata/progs/noptrace.c")
	r := runCmd(t, "", "", noptrace, uexecBin, "run", "--build", "/bin/true")
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if r.status.ExitStatus() != exitUsage || len(lines) != 1 || !strings.Contains(lines[0], "--once") || !strings.Contains(lines[0], "ptrace") {
		t.Errorf("want exit %d and one line naming ptrace and --once; got %v", exitUsage, r)
	}
	if r := runCmd(t, "", "", noptrace, uexecBin, "run", "--once", "/bin/true"); r.status != 0 {
		t.Errorf("--once under the same filter: %v", r)
	}
}

// TestOnceSetuidAsUser: a set-uid program that an ordinary user's uexec
// could not give its ids is exec'd by the kernel in place, so it runs as
// natively, with its owner's euid.
func TestOnceSetuidAsUser(t *testing.T) {
	needRun(t)
	setpriv := testenv.NeedTool(t, "setpriv")
	dir := testenv.SharedTempDir(t)
	id := dir + "/id"
	b, err := os.ReadFile("/usr/bin/id")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(id, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(id, 0o755|os.ModeSetuid); err != nil {
		t.Fatal(err)
	}
	user := []string{setpriv, "--reuid", "65534", "--regid", "65534", "--clear-groups", "--"}
	native := runCmd(t, "", "/", append(user, id)...)
	under := runCmd(t, "", "/", append(user, uexecBin, "run", "--once", id)...)
	testenv.Need(t, native.status == 0 && strings.Contains(native.stdout, "euid=0"), "a set-uid copy in %s does not work natively: %v", dir, native)
	if under.stdout != native.stdout || under.status != native.status {
		t.Errorf("natively:\n%v\nunder uexec --once:\n%v", native, under)
	}
}

// TestNoRandomAsAnyUser: --no-random gives the program ADDR_NO_RANDOMIZE,
// as setarch -R does natively, whoever runs uexec and whoever makes the
// exec: root's --once (the stub's), an ordinary user's (the kernel's in
// place, under the personality it sets first) and the tree's.
func TestNoRandomAsAnyUser(t *testing.T) {
	needRun(t)
	setpriv := testenv.NeedTool(t, "setpriv")
	setarch := testenv.NeedTool(t, "setarch")
	const prog, arg = "/bin/cat", "/proc/self/personality"
	for _, u := range []struct {
		name   string
		prefix []string
	}{
		{"root", nil},
		{"uid 65534", []string{setpriv, "--reuid", "65534", "--regid", "65534", "--clear-groups", "--"}},
	} {
		native := runCmd(t, "", "/", append(u.prefix, setarch, "-R", prog, arg)...)
		if native.status != 0 || strings.TrimSpace(native.stdout) != "00040000" {
			t.Fatalf("%s: setarch -R natively: %v", u.name, native)
		}
		for _, mode := range [][]string{{"--once"}, nil} {
			argv := append(append(append(u.prefix, uexecBin, "run", "--no-random"), mode...), prog, arg)
			if under := runCmd(t, "", "/", argv...); under.stdout != native.stdout || under.status != 0 {
				t.Errorf("%s, uexec run --no-random %v: %v, natively %q", u.name, mode, under, native.stdout)
			}
		}
	}
}

// TestOnceTracedSeesProgram: under a tracer, --once has the kernel exec a
// program whose plan is the kernel's own, so that the tracer sees the
// program's exec as natively: strace's execve of it, gdb's "executing new
// program" naming it (its symbols and breakpoints then resolve). A plan
// only the stub can build (a binfmt rule of uexec's) is still the stub's
// under a tracer, and runs.
func TestOnceTracedSeesProgram(t *testing.T) {
	needRun(t)
	strace := testenv.NeedTool(t, "strace")
	gdb := testenv.NeedTool(t, "gdb")
	trace := filepath.Join(t.TempDir(), "trace")
	r := runCmd(t, "", "", strace, "-f", "-e", "trace=execve", "-o", trace, uexecBin, "run", "--once", "--verbose", "/bin/echo", "x")
	if r.status != 0 || r.stdout != "x\n" || !strings.Contains(r.stderr, "uexec is traced") {
		t.Fatalf("under strace: %v", r)
	}
	if b, err := os.ReadFile(trace); err != nil || !strings.Contains(string(b), `execve("/bin/echo", ["/bin/echo", "x"]`) {
		t.Errorf("strace does not show the program's execve (%v):\n%s", err, b)
	}
	r = runCmd(t, "", "", gdb, "-batch", "-nx", "-ex", "run", "--args", uexecBin, "run", "--once", "/bin/true")
	if !strings.Contains(r.stdout, "executing new program: /bin/true\n") && !strings.Contains(r.stdout, "executing new program: /usr/bin/true\n") {
		t.Errorf("gdb did not follow the exec into /bin/true:\n%v", r)
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "s.uxt")
	writeFile(t, script, "echo from rule\n", 0o755)
	for _, pre := range [][]string{{strace, "-f", "-o", "/dev/null"}, {gdb, "-batch", "-nx", "-ex", "run", "--args"}} {
		r := runCmd(t, "", "", append(append([]string{}, pre...), uexecBin, "run", "--once", "--binfmt", ":uxt:E::uxt::/bin/sh:", script)...)
		if !strings.Contains(r.stdout, "from rule\n") {
			t.Errorf("%s, a binfmt rule's exec (the stub's): %v", pre[0], r)
		}
	}
}
