//go:build linux && amd64

package linux

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/uexec/uexec/internal/testenv"
)

// program is a program under test, built once per test binary run.
type program struct {
	name  string
	build func(t *testing.T) string // returns the path
}

func cProgram(name string, flags ...string) program {
	return program{name, func(t *testing.T) string { return cc(t, name, showSrc, flags...) }}
}

func hostProgram(path string) program {
	return program{filepath.Base(path), func(t *testing.T) string {
		if _, err := os.Stat(path); err != nil {
			t.Skipf("%s: %v", path, err)
		}
		return path
	}}
}

func goProgram() program {
	return program{"go", func(t *testing.T) string {
		goBin, err := exec.LookPath("go")
		need(t, err == nil, "go not in PATH")
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(goSrc), 0o644); err != nil {
			t.Fatal(err)
		}
		bin := filepath.Join(dir, "goprog")
		cmd := exec.Command(goBin, "build", "-o", bin, "main.go")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GO111MODULE=off", "CGO_ENABLED=0", "GOFLAGS=") // not -race: a static program
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
		return bin
	}}
}

func scriptProgram() program {
	return program{"script", func(t *testing.T) string {
		p := filepath.Join(t.TempDir(), "script.sh")
		src := "#!/bin/sh -e\necho \"script $0 $# $*\"\necho \"A=$A\"\nexit 5\n"
		if err := os.WriteFile(p, []byte(src), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}}
}

// TestDifferential runs each program natively and under uexec with the
// same arguments and environment, and compares what the caller sees
// (stdout, stderr, exit status) and what the program reports of itself.
func TestDifferential(t *testing.T) {
	needPtrace(t)
	tests := []struct {
		prog program
		args []string
	}{
		{cProgram("static", "-static"), []string{"a", "b c"}},
		{cProgram("static-pie", "-static-pie"), []string{"x"}},
		{cProgram("dynamic-pie", "-pie", "-fPIE"), []string{"x", "exit3"}},
		{cProgram("dynamic-nopie", "-no-pie"), nil},
		{hostProgram("/bin/true"), nil},
		{hostProgram("/bin/false"), nil},
		{hostProgram("/bin/ls"), []string{"-la", "/usr"}},
		{hostProgram("/bin/echo"), []string{"hello", "world"}},
		{goProgram(), []string{"one", "two"}},
		{scriptProgram(), []string{"s1", "s2"}},
	}
	env := []string{"A=1", "HOME=/nonexistent", "PATH=/usr/bin:/bin", "LC_ALL=C"}
	for _, tt := range tests {
		t.Run(tt.prog.name, func(t *testing.T) {
			path := tt.prog.build(t)
			argv := append([]string{path}, tt.args...)
			want := runNative(t, path, argv, env, false)
			got, p := runUexec(t, path, argv, env, false)
			if got != want {
				t.Errorf("uexec:\n%s\nnative:\n%s", fmtResult(got), fmtResult(want))
			}
			for _, n := range p.Notes {
				t.Logf("note: %s", n)
			}
		})
	}
}

func fmtResult(r result) string {
	return fmt.Sprintf("status %#x\nstdout:\n%s\nstderr:\n%s", uint32(r.status), r.stdout, r.stderr)
}

// TestMapsNoRandom compares /proc/self/maps of a program started with
// ADDR_NO_RANDOMIZE by the kernel (setarch -R) and by uexec.
func TestMapsNoRandom(t *testing.T) {
	needPtrace(t)
	tests := []program{
		cProgram("static", "-static"),
		cProgram("static-pie", "-static-pie"),
		cProgram("dynamic-pie", "-pie", "-fPIE"),
		cProgram("dynamic-nopie", "-no-pie"),
	}
	env := []string{"A=1"}
	for _, prog := range tests {
		t.Run(prog.name, func(t *testing.T) {
			path := prog.build(t)
			for _, what := range []string{"maps", "auxv", "stat"} {
				argv := []string{path, what}
				want := runNative(t, path, argv, env, true)
				got, _ := runUexec(t, path, argv, env, true)
				if what == "stat" {
					want.stdout, got.stdout = statFields(want.stdout), statFields(got.stdout)
				}
				if d := testenv.LineDiff(want.stdout, got.stdout); d != "" {
					t.Errorf("%s: native (-) and uexec (+) differ:\n%s", what, d)
				}
			}
		})
	}
}

// statFields keeps the lines of a "stat" run except the /proc/self/stat
// line, of which it keeps the mm fields (proc(5): startcode, endcode,
// startstack, start_data, end_data, start_brk, arg_start, arg_end,
// env_start, env_end) and the comm.
func statFields(out string) string {
	var keep []string
	for _, line := range strings.Split(out, "\n") {
		i := strings.LastIndex(line, ") ")
		if !strings.Contains(line, " (") || i < 0 {
			keep = append(keep, line)
			continue
		}
		f := strings.Fields(line[i+2:]) // f[0] is field 3 (state)
		field := func(n int) string { return f[n-3] }
		keep = append(keep, line[strings.Index(line, " (")+1:i+1])
		for _, n := range []int{26, 27, 28, 45, 46, 47, 48, 49, 50, 51} {
			keep = append(keep, fmt.Sprintf("stat[%d]=%s", n, field(n)))
		}
	}
	return strings.Join(keep, "\n")
}

// TestSuperprivNoted: Process.Notes (--verbose) says PF_SUPERPRIV is set
// exactly where the program sees it in its /proc/self/stat flags (the
// stub's exe_fd, with root's capability).
func TestSuperprivNoted(t *testing.T) {
	plan, err := newSwitch(t).Execve(selfRequest(t, "/bin/cat", []string{"cat", "/proc/self/stat"}, nil, false))
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()
	res, proc := runPlan(t, plan, false)
	// Field 9, after the comm in parentheses.
	fields := strings.Fields(res.stdout[strings.LastIndexByte(res.stdout, ')')+1:])
	if len(fields) < 7 {
		t.Fatalf("/proc/self/stat: %q", res.stdout)
	}
	flags, err := strconv.ParseUint(fields[6], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	set := flags&0x100 != 0
	if noted := slices.Contains(proc.Notes, superprivNote); noted != set {
		t.Errorf("flags %#x (PF_SUPERPRIV %v), notes %q", flags, set, proc.Notes)
	}
	if os.Geteuid() == 0 && !set {
		t.Errorf("as root the stub set exe_fd, but the flags are %#x", flags)
	}
}

// TestPlanRandomPerStart: every start of one plan gets AT_RANDOM bytes of
// its own, none the plan's (its stack is the plan's layout, reused), as
// every kernel exec draws them anew; the rest of the stack is the plan's.
func TestPlanRandomPerStart(t *testing.T) {
	prog := cc(t, "random", `#include <stdio.h>
#include <sys/auxv.h>
int main(int argc, char **argv) {
	unsigned char *r = (unsigned char *)getauxval(AT_RANDOM);
	for (int i = 0; i < 16; i++) printf("%02x", r[i]);
	printf(" %s %p\n", argv[1], (void *)argv[1]);
	return 0;
}`, "-static")
	plan, err := newSwitch(t).Execve(selfRequest(t, prog, []string{prog, "arg"}, nil, true))
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()
	planned := fmt.Sprintf("%x", plan.Image.Random)
	seen := map[string]bool{}
	var rest string
	for range 3 {
		res, _ := runPlan(t, plan, true)
		random, tail, _ := strings.Cut(strings.TrimSpace(res.stdout), " ")
		if len(random) != 32 || random == planned || seen[random] {
			t.Errorf("AT_RANDOM %q: the plan's is %s, earlier starts' %v", random, planned, seen)
		}
		seen[random] = true
		if rest != "" && tail != rest {
			t.Errorf("argv[1] %q at another place than in the start before (%q), without ASLR", tail, rest)
		}
		rest = tail
	}
}
