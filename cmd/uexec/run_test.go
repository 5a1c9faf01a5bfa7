package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uexec/uexec/internal/testenv"
)

// uexecBin is the uexec command built for these tests.
var uexecBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "uexec-cli-")
	if err != nil {
		panic(err)
	}
	uexecBin = filepath.Join(dir, "uexec")
	if out, err := exec.Command("go", "build", "-o", uexecBin, ".").CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		panic(err)
	}
	code := m.Run()
	testenv.Cleanup()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testEnv is the environment both runs get.
var testEnv = []string{"PATH=/usr/local/go/bin:/usr/local/bin:/usr/bin:/bin", "HOME=/root", "LANG=C", "LC_ALL=C", "GOCACHE=/tmp/uexec-test-gocache", "GOFLAGS=-buildvcs=false"}

type result struct {
	stdout, stderr string
	status         syscall.WaitStatus
}

func (r result) String() string {
	return fmt.Sprintf("status %d signal %v\nstdout:\n%s\nstderr:\n%s", r.status.ExitStatus(), r.status.Signal(), r.stdout, r.stderr)
}

// runDeadline bounds every command a test runs: past it the command is
// killed and the test fails, naming it.
const runDeadline = 2 * time.Minute

func runCmd(t *testing.T, stdin string, dir string, argv ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runDeadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.WaitDelay = 5 * time.Second
	cmd.Env = testEnv
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%v did not end within %v (killed)\nstdout:\n%s\nstderr:\n%s", argv, runDeadline, o.String(), e.String())
	}
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("%v: %v", argv, err)
		}
	}
	return result{o.String(), e.String(), cmd.ProcessState.Sys().(syscall.WaitStatus)}
}

func needRun(t *testing.T) {
	t.Helper()
	testenv.NeedRoot(t)
}

// TestRunCorpus runs real programs natively and under `uexec run` and
// compares their output and status.
func TestRunCorpus(t *testing.T) {
	needRun(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "file.txt")
	os.WriteFile(file, []byte("banana\napple\ncherry\n"), 0o644)
	hello := testenv.BuildC(t, "testdata/progs/hello.c")
	helloStatic := testenv.BuildC(t, "testdata/progs/hello.c", "-static")
	helloStaticPie := testenv.BuildC(t, "testdata/progs/hello.c", "-static-pie")
	helloNoPie := testenv.BuildC(t, "testdata/progs/hello.c", "-no-pie")
	threads := testenv.BuildC(t, "testdata/progs/threads.c", "-pthread")
	goProg := testenv.BuildGo(t, "testdata/progs/hello.go")
	goPie := testenv.BuildGo(t, "testdata/progs/hello.go", "-buildmode=pie")
	script := filepath.Join(dir, "script.sh")
	os.WriteFile(script, []byte("#!/bin/sh\necho script \"$0\" \"$@\"\n"), 0o755)
	pyScript := filepath.Join(dir, "script.py")
	os.WriteFile(pyScript, []byte("#!/usr/bin/python3\nimport sys\nprint('py', sys.argv[1:])\n"), 0o755)
	plScript := filepath.Join(dir, "script.pl")
	os.WriteFile(plScript, []byte("#!/usr/bin/perl -w\nprint \"pl @ARGV\\n\";\n"), 0o755)

	for _, tc := range []struct {
		name  string
		argv  []string
		stdin string
	}{
		{"true", []string{"/bin/true"}, ""},
		{"false", []string{"/bin/false"}, ""},
		{"echo", []string{"/bin/echo", "hello", "world"}, ""},
		{"ls", []string{"/bin/ls", "-la", "/usr"}, ""},
		{"cat", []string{"/bin/cat", file}, ""},
		{"cat pipe", []string{"/bin/cat"}, "from a pipe\n"},
		{"sort", []string{"/usr/bin/sort"}, "c\nb\na\n"},
		{"sh pipeline", []string{"/bin/sh", "-c", "echo b a c | tr ' ' '\\n' | sort | head -2; exit 3"}, ""},
		{"bash", []string{"/bin/bash", "-c", "x=(1 2 3); echo ${#x[@]} $((6*7))"}, ""},
		{"python3", []string{"/usr/bin/python3", "-c", "import sys, os; print(sys.argv, os.getcwd())", "a"}, ""},
		{"perl", []string{"/usr/bin/perl", "-e", "print join(',', @ARGV), \"\\n\"", "x", "y"}, ""},
		{"gcc version", []string{"gcc", "--version"}, ""},
		{"go version", []string{"go", "version"}, ""},
		{"env", []string{"/usr/bin/env"}, ""},
		{"stderr and status", []string{"/bin/sh", "-c", "echo out; echo err >&2; exit 7"}, ""},
		{"dynamic PIE", []string{hello, "a b", "c"}, ""},
		{"non-PIE", []string{helloNoPie, "x"}, ""},
		{"static", []string{helloStatic, "x"}, ""},
		{"static-pie", []string{helloStaticPie, "x"}, ""},
		{"threads", []string{threads}, ""},
		{"go", []string{goProg, "arg"}, ""},
		{"go pie", []string{goPie, "arg"}, ""},
		{"sh script", []string{script, "1", "2"}, ""},
		{"python script", []string{pyScript, "1"}, ""},
		{"perl script", []string{plScript, "1"}, ""},
		{"killed by signal", []string{"/bin/sh", "-c", "kill -TERM $$"}, ""},
		{"sigsegv", []string{"/bin/sh", "-c", "kill -SEGV $$"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			native := runCmd(t, tc.stdin, dir, tc.argv...)
			under := runCmd(t, tc.stdin, dir, append([]string{uexecBin, "run", "--build", "--"}, tc.argv...)...)
			if native.stdout != under.stdout || native.stderr != under.stderr || native.status != under.status {
				t.Errorf("native:\n%v\nunder uexec:\n%v", native, under)
			}
		})
	}
}

func TestRunExitStatuses(t *testing.T) {
	needRun(t)
	for _, tc := range []struct {
		name   string
		argv   []string
		code   int
		signal syscall.Signal
	}{
		{"exit 3", []string{"/bin/sh", "-c", "exit 3"}, 3, 0},
		{"SIGKILL", []string{"/bin/sh", "-c", "kill -KILL $$"}, -1, syscall.SIGKILL},
		{"SIGSEGV", []string{"/bin/sh", "-c", "kill -SEGV $$"}, -1, syscall.SIGSEGV},
		{"not found", []string{"/nonexistent"}, 127, 0},
		{"not executable", []string{"/etc/passwd"}, 126, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCmd(t, "", "/", append([]string{uexecBin, "run", "--build"}, tc.argv...)...)
			if tc.signal != 0 {
				if !r.status.Signaled() || r.status.Signal() != tc.signal {
					t.Errorf("uexec ended with %v, want killed by %v", r, tc.signal)
				}
				return
			}
			if r.status.ExitStatus() != tc.code {
				t.Errorf("exit status %d, want %d (%v)", r.status.ExitStatus(), tc.code, r)
			}
		})
	}
}

// TestRunForwardsSignals sends signals to uexec and checks that the program
// got them: the usual ones, and others a kill of the program's pid would
// give it natively (SIGALRM, a SIGSEGV sent by kill, a real-time signal).
func TestRunForwardsSignals(t *testing.T) {
	needRun(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH, syscall.SIGQUIT,
		syscall.SIGALRM, syscall.SIGVTALRM, syscall.SIGPWR, syscall.SIGABRT, syscall.SIGSEGV, syscall.SIGBUS, syscall.SIGFPE, syscall.SIGILL, syscall.Signal(40)} {
		t.Run(sig.String(), func(t *testing.T) {
			name := strings.TrimPrefix(unixSigName(sig), "SIG")
			cmd := exec.Command(uexecBin, "run", "--build", "/bin/bash", "-c",
				"trap 'echo got "+name+"; exit 0' "+name+"; echo ready; while :; do sleep 0.05; done")
			cmd.Env = testEnv
			var out bytes.Buffer
			pr, pw, _ := os.Pipe()
			cmd.Stdout = pw
			cmd.Stderr = &out
			// Its own process group, killed at the end: a program that
			// outlives uexec must not outlive the test.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			pw.Close()
			pr.SetReadDeadline(time.Now().Add(10 * time.Second))
			buf := make([]byte, 6)
			if _, err := pr.Read(buf); err != nil || string(buf) != "ready\n" {
				t.Fatalf("program did not start: %q %v %s", buf, err, out.String())
			}
			cmd.Process.Signal(sig)
			done := make(chan error)
			go func() { done <- cmd.Wait() }()
			rest := make([]byte, 100)
			n, _ := pr.Read(rest)
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("uexec: %v (%s)", err, out.String())
				}
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				t.Fatal("program did not end after the signal")
			}
			if got := string(rest[:n]); got != "got "+name+"\n" {
				t.Errorf("program printed %q, want the trap's output", got)
			}
		})
	}
}

func unixSigName(s syscall.Signal) string {
	names := map[syscall.Signal]string{syscall.SIGINT: "SIGINT", syscall.SIGTERM: "SIGTERM", syscall.SIGHUP: "SIGHUP",
		syscall.SIGUSR1: "SIGUSR1", syscall.SIGUSR2: "SIGUSR2", syscall.SIGWINCH: "SIGWINCH", syscall.SIGQUIT: "SIGQUIT",
		syscall.SIGALRM: "SIGALRM", syscall.SIGVTALRM: "SIGVTALRM", syscall.SIGPWR: "SIGPWR", syscall.SIGABRT: "SIGABRT",
		syscall.SIGSEGV: "SIGSEGV", syscall.SIGBUS: "SIGBUS", syscall.SIGFPE: "SIGFPE", syscall.SIGILL: "SIGILL"}
	if n, ok := names[s]; ok {
		return n
	}
	return strconv.Itoa(int(s)) // bash's trap takes a number
}

// TestRunOptions checks the env(1)-like options under run.
func TestRunOptions(t *testing.T) {
	needRun(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"clear and set", []string{"-i", "A=1", "B=2", "/usr/bin/env"}, "A=1\nB=2\n"},
		{"unset", []string{"-u", "HOME", "/bin/sh", "-c", "echo ${HOME-unset}"}, "unset\n"},
		{"argv0", []string{"-a", "renamed", "/bin/sh", "-c", "echo $0"}, "renamed\n"},
		{"chdir", []string{"-C", dir, "/bin/pwd"}, dir + "\n"},
		{"PATH search", []string{"-i", "PATH=/bin:/usr/bin", "echo", "found"}, "found\n"},
		{"no-random", []string{"--no-random", "/bin/cat", "/proc/self/personality"}, "00040000\n"},
		{"double dash", []string{"--", "/bin/echo", "--", "-i"}, "-- -i\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCmd(t, "", "/", append([]string{uexecBin, "run", "--build"}, tc.args...)...)
			if r.stdout != tc.want || r.status.ExitStatus() != 0 {
				t.Errorf("got %v, want stdout %q", r, tc.want)
			}
		})
	}
}

// TestRunSurvivesUexec kills uexec while its program runs. With --once
// there is no uexec left to kill: uexec became the program (same pid); in
// tree mode the untraced program goes on (its later execs fail with ENOSYS:
// the filter has no listener any more): never is it left stopped or
// traced.
func TestRunSurvivesUexec(t *testing.T) {
	needRun(t)
	for _, tc := range []struct {
		name    string
		args    []string
		survive bool
	}{
		{"once", []string{"--once"}, true},
		{"tree", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			pidFile := filepath.Join(dir, "pid")
			args := append(append([]string{"run"}, tc.args...), "/bin/sh", "-c", "echo $$ > "+pidFile+"; exec sleep 30")
			cmd := exec.Command(uexecBin, args...)
			cmd.Env = testEnv
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var pid int
			for i := 0; i < 200 && pid == 0; i++ {
				time.Sleep(10 * time.Millisecond)
				if b, err := os.ReadFile(pidFile); err == nil && len(b) > 1 {
					fmt.Sscan(string(b), &pid)
				}
			}
			if pid == 0 {
				cmd.Process.Kill()
				t.Fatal("the program did not start")
			}
			defer syscall.Kill(pid, syscall.SIGKILL)
			if tc.survive && len(tc.args) > 0 {
				if pid != cmd.Process.Pid {
					t.Errorf("--once: the program is pid %d, uexec was %d", pid, cmd.Process.Pid)
				}
				cmd.Process.Kill()
				cmd.Wait()
				return
			}
			time.Sleep(50 * time.Millisecond) // sleep(1) exec'd
			cmd.Process.Kill()
			cmd.Wait()
			time.Sleep(100 * time.Millisecond)
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
			state, tracer := "", ""
			for _, l := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(l, "State:"); ok {
					state = strings.TrimSpace(v)
				}
				if v, ok := strings.CutPrefix(l, "TracerPid:"); ok {
					tracer = strings.TrimSpace(v)
				}
			}
			alive := err == nil && !strings.HasPrefix(state, "Z") && !strings.HasPrefix(state, "X")
			if alive != tc.survive {
				t.Errorf("program alive %v (state %q), want %v", alive, state, tc.survive)
			}
			if alive && (tracer != "0" || strings.Contains(state, "stopped") || strings.Contains(state, "tracing")) {
				t.Errorf("program left stopped or traced: state %q tracer %s", state, tracer)
			}
		})
	}
}

// TestVerboseLinesPrefixed: every line --verbose writes begins with
// "uexec: ", the stub's listing too, so that uexec's lines can be told from
// the program's on a shared stderr.
func TestVerboseLinesPrefixed(t *testing.T) {
	needRun(t)
	r := runCmd(t, "", "/", uexecBin, "run", "--build", "--verbose", "/bin/sh", "-c", "echo out; echo err >&2")
	if r.status != 0 || r.stdout != "out\n" || !strings.Contains(r.stderr, "uexec:   0 syscall") {
		t.Fatalf("%v", r)
	}
	for _, l := range strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n") {
		if !strings.HasPrefix(l, "uexec: ") && l != "err" {
			t.Errorf("a line of --verbose without the prefix: %q\n%s", l, r.stderr)
			break
		}
	}
}
