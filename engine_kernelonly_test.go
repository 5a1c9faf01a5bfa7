package uexec_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uexec/uexec"
	"github.com/uexec/uexec/internal/testenv"
)

// TestSpawnExecuteOnly: Engine.Spawn, alone and as a tree, of a program an
// ordinary user may execute but not read (mode 0711, root's) starts it as
// os/exec does, by the kernel (Process.Kernel says why; Engine.Plan's plan
// is KernelOnly), where it failed with EACCES.
func TestSpawnExecuteOnly(t *testing.T) {
	if path := os.Getenv("UEXEC_XO_CHILD"); path != "" {
		e := uexec.NewEngine()
		s := &uexec.SpawnRequest{Path: path, Argv: []string{"xo", "a"}, Env: []string{}, Files: []*os.File{os.Stdin, os.Stdout, os.Stderr}}
		plan, err := e.Plan(s)
		if err != nil {
			fmt.Printf("plan: %v\n", err)
			return
		}
		fmt.Printf("plan: %s\n", plan.KernelOnly)
		plan.Close()
		for _, tree := range []bool{false, true} {
			s.Tree = tree
			p, err := e.Spawn(context.Background(), s)
			if err != nil {
				fmt.Printf("spawn: %v\n", err)
				continue
			}
			var st any
			if tree {
				st, err = p.WaitStatus()
			} else {
				st, err = p.Wait()
			}
			fmt.Printf("tree %v: %v %v kernel %q\n", tree, st, err, p.Kernel)
		}
		return
	}
	testenv.NeedRoot(t) // root's execute-only file, a user to drop to
	prog, got, err := asNobody(t, "TestSpawnExecuteOnly", "UEXEC_XO_CHILD", "xo", 0o711)
	kernel := ` kernel "exact by the kernel: uexec may not read ` + prog
	for _, want := range []string{
		"plan: exact by the kernel: uexec may not read " + prog + ",",
		"hello tls=42 argc=2 [xo] [a]\ntree false: exit status 0 <nil>" + kernel,
		"hello tls=42 argc=2 [xo] [a]\ntree true: 0 <nil>" + kernel,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("as 65534 (%v), want %q in:\n%s", err, want, got)
		}
	}
}

// TestSpawnAsUserForks: for an ordinary user, whose stub could not make
// /proc/PID/exe the program's, Spawn of a plain program is the kernel's
// exec from the fork, as os/exec makes it: no stub runs (its program is
// never logged) and Process.Kernel says why. With a signal mask to set,
// which os/exec's fork cannot, the stub runs and then execs the program.
func TestSpawnAsUserForks(t *testing.T) {
	if path := os.Getenv("UEXEC_USERFORK_CHILD"); path != "" {
		e := uexec.NewEngine()
		var mask uint64 = 1 << (syscall.SIGUSR1 - 1)
		for _, m := range []*uint64{nil, &mask} {
			stubRan := false
			s := &uexec.SpawnRequest{Path: path, Argv: []string{"hello"}, Env: []string{}, SigMask: m,
				Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
				Logf:  func(f string, a ...any) { stubRan = stubRan || strings.HasPrefix(f, "stub program") }}
			p, err := e.Spawn(context.Background(), s)
			if err != nil {
				fmt.Printf("spawn: %v\n", err)
				continue
			}
			st, err := p.Wait()
			fmt.Printf("mask %v: %v %v stub %v kernel %q\n", m != nil, st, err, stubRan, p.Kernel)
		}
		return
	}
	testenv.NeedRoot(t) // a user to drop to
	_, got, err := asNobody(t, "TestSpawnAsUserForks", "UEXEC_USERFORK_CHILD", "hello", 0o755)
	kernel := ` kernel "exact by the kernel: /proc/PID/exe needs CAP_SYS_ADMIN`
	for _, want := range []string{
		"hello tls=42 argc=1 [hello]\nmask false: exit status 0 <nil> stub false" + kernel,
		"hello tls=42 argc=1 [hello]\nmask true: exit status 0 <nil> stub true" + kernel,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("as 65534 (%v), want %q in:\n%s", err, want, got)
		}
	}
}

// asNobody runs the test named test of a copy of this binary as uid and
// gid 65534, with env set to the path of a copy of the static hello
// program named name, of mode mode, and returns that path and the child's
// output. The child has 30 s.
func asNobody(t *testing.T, test, env, name string, mode os.FileMode) (prog, out string, err error) {
	t.Helper()
	setpriv := testenv.NeedTool(t, "setpriv")
	dir := testenv.SharedTempDir(t)
	copyTo := func(src, name string, mode os.FileMode) string {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, name)
		if err := os.WriteFile(dst, b, mode); err != nil || os.Chmod(dst, mode) != nil {
			t.Fatal(err)
		}
		return dst
	}
	self := copyTo(os.Args[0], "uexec.test", 0o755) // the test binary's directory is root's alone
	prog = copyTo(testenv.BuildC(t, "cmd/uexec/testdata/progs/hello.c", "-static"), name, mode)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, setpriv, "--reuid", "65534", "--regid", "65534", "--clear-groups", "--", self, "-test.run=^"+test+"$")
	cmd.Env = append(os.Environ(), env+"="+prog)
	b, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("the child as 65534 did not end within 30 s:\n%s", b)
	}
	return prog, string(b), err
}
