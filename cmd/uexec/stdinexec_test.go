package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uexec/uexec/internal/testenv"
)

// TestRunFromStdin runs programs read from standard input (`uexec run -`)
// and compares them with the kernel's own fexecve of a sealed memfd of the
// same name holding the same bytes (close-on-exec for an ELF, not for a
// script, as uexec chooses): argv, AT_EXECFN, comm, /proc/self/exe, the
// descriptor and the exit status, as root and as uid 65534.
func TestRunFromStdin(t *testing.T) {
	testenv.NeedRoot(t)
	dir := testenv.SharedTempDir(t)
	cp := func(src, name string) string { return copyExec(t, dir, src, name) }
	bin := cp(uexecBin, "uexec")
	launch := cp(testenv.BuildC(t, "testdata/progs/memfdexec.c"), "memfdexec")
	dynamic := cp(testenv.BuildC(t, "testdata/progs/memfdshow.c"), "show")
	static := cp(testenv.BuildC(t, "testdata/progs/memfdshow.c", "-static"), "show-static")
	script := filepath.Join(dir, "script")
	os.WriteFile(script, []byte("#!/bin/sh\nread c < /proc/$$/comm\necho \"$0 [$*] comm $c exe $(readlink /proc/$$/exe)\"\nls /proc/$$/fd/3 >/dev/null 2>&1 && echo fd3 open\nexit 4\n"), 0o755)
	for _, u := range []struct {
		name   string
		prefix []string
	}{{"root", nil}, {"nobody", asNobody(t)}} {
		for _, p := range []struct {
			name, file, cloexec string
			status              int
		}{
			{"dynamic", dynamic, "1", 5},
			{"static", static, "1", 5},
			{"script", script, "0", 4},
		} {
			t.Run(u.name+"/"+p.name, func(t *testing.T) {
				in, err := os.ReadFile(p.file)
				if err != nil {
					t.Fatal(err)
				}
				args := []string{"-", "one", "two words"}
				native := runLimited(t, "native fexecve", nil, "/", append(append(append([]string{}, u.prefix...), launch, p.cloexec, stdinName, p.file), args...)...)
				under := runStdin(t, string(in), append(append(append([]string{}, u.prefix...), bin, "run"), args...)...)
				if native.status.ExitStatus() != p.status || native.stdout == "" {
					t.Fatalf("native: %v", native)
				}
				if under.stdout != native.stdout || under.status != native.status {
					t.Errorf("uexec run - differs from the kernel's fexecve:\n%s\nnative %v\nuexec %v", testenv.LineDiff(native.stdout, under.stdout), native, under)
				}
			})
		}
	}
}

// TestPlanFromStdin: `uexec plan -` plans the fexecve of a memfd.
func TestPlanFromStdin(t *testing.T) {
	b, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Skip(err)
	}
	r := runStdin(t, string(b), uexecBin, "plan", "--json", "-")
	for _, want := range []string{`"program": "/dev/fd/3"`, `"comm": "memfd:stdin"`, `"execfn": "/dev/fd/3"`} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("plan - lacks %s: %v", want, r)
		}
	}
	if r := runStdin(t, "", uexecBin, "run", "--once", "-"); r.status.ExitStatus() != exitUsage {
		t.Errorf("run --once -: %v, want status %d", r, exitUsage)
	}
}

// runStdin runs argv with stdin as its standard input (a pipe) and a
// deadline: past it the process group is killed and the test fails.
func runStdin(t *testing.T, stdin string, argv ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env, cmd.Dir = testEnv, "/"
	cmd.Stdin = strings.NewReader(stdin)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%v did not end in time\nstdout:\n%s\nstderr:\n%s", argv, o.String(), e.String())
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("%v: %v", argv, err)
	}
	return result{o.String(), e.String(), cmd.ProcessState.Sys().(syscall.WaitStatus)}
}

// TestStdinDirectory: a directory as standard input of `uexec run -` is
// refused naming the errno (EISDIR), exit 125.
func TestStdinDirectory(t *testing.T) {
	needRun(t)
	dir, err := os.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	cmd := exec.Command(uexecBin, "run", "--build", "-")
	cmd.Stdin = dir
	out, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 125 || string(out) != "uexec: -: reading the program from standard input: is a directory (EISDIR)\n" {
		t.Errorf("status %d: %q", cmd.ProcessState.ExitCode(), out)
	}
}
