package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runRaw runs argv in dir with the environment env exactly as given
// (duplicates, entries without "=", empty ones: os/exec would drop them),
// within runDeadline.
func runRaw(t *testing.T, dir string, env []string, argv ...string) result {
	t.Helper()
	or, ow, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	er, ew, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	pid, err := syscall.ForkExec(argv[0], argv, &syscall.ProcAttr{Dir: dir, Env: env,
		Files: []uintptr{0, ow.Fd(), ew.Fd()}, Sys: &syscall.SysProcAttr{Setpgid: true}})
	ow.Close()
	ew.Close()
	if err != nil {
		t.Fatalf("%v: %v", argv, err)
	}
	kill := time.AfterFunc(runDeadline, func() { syscall.Kill(-pid, syscall.SIGKILL) })
	var o, e bytes.Buffer
	done := make(chan bool)
	go func() { e.ReadFrom(er); done <- true }()
	o.ReadFrom(or)
	<-done
	var ws syscall.WaitStatus
	syscall.Wait4(pid, &ws, 0, nil)
	if !kill.Stop() {
		t.Fatalf("%v did not end within %v (killed)", argv, runDeadline)
	}
	or.Close()
	er.Close()
	return result{o.String(), e.String(), ws}
}

// TestRunLikeEnv: uexec run's options, assignments, environment and PATH
// search are env(1)'s (GNU coreutils, glibc's execvp), compared with env
// itself, tree and --once: the caller's environment passed as it is (order,
// duplicates, entries without "="), NAME=VALUE replacing the first entry of
// its name in place, -u removing all, options ending at the first operand,
// short options together, no program printing the environment, PATH read
// from the program's environment (its default when unset), an empty name,
// and glibc's way with a PATH entry too long for its buffer (skipped, and the
// working directory tried after it; a PATH of that one entry alone leaves
// glibc's errno as it was, whatever it was, and is not compared).
func TestRunLikeEnv(t *testing.T) {
	needRun(t)
	envBin := "/usr/bin/env"
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	os.Mkdir(bin, 0o755)
	prog := filepath.Join(bin, "pa")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\necho pa ran\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cwdProg := filepath.Join(dir, "pa")
	if err := os.WriteFile(cwdProg, []byte("#!/bin/sh\necho the cwd one\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	long := "/" + strings.Repeat("b", 5000)
	caller := []string{"NOEQ", "A=1", "A=2", "", "=val", "PATH=/usr/bin:/bin"}
	for _, args := range [][]string{
		{envBin}, {"A=3", envBin}, {"A=3", "B=4", "NOEQ=x", envBin}, {"-u", "A", envBin}, {"-uA", envBin},
		{"-iu", "A", "C=1", envBin}, {"-i", "B=1", envBin}, {"A=1", "-i", envBin}, {"-u", "A=B", envBin},
		{"./x=y", envBin}, {"=x", envBin}, {"A=9"}, {"-i"},
		{"PATH=" + bin, "pa"}, {"-u", "PATH", "pa"}, {"-i", "pa"}, {""},
		{"PATH=" + long + ":/nonexistent", "pa"},
		{"-C", "", envBin}, {"--ignore-environment=x", envBin}, {"-C", dir},
		{"-C", bin, "/proc/self/cwd/pa"}, // the program's cwd, not uexec's {"PATH=/usr/bin:" + long, "pa"},
	} {
		native := runRaw(t, dir, caller, append([]string{envBin}, args...)...)
		for _, mode := range [][]string{{}, {"--once"}} {
			under := runRaw(t, dir, caller, append(append([]string{uexecBin, "run", "--build"}, mode...), args...)...)
			if under.stdout != native.stdout || under.status != native.status || (native.stderr == "") != (under.stderr == "") {
				t.Errorf("uexec run %v %q:\n%v\nenv:\n%v", mode, args, under, native)
			}
		}
	}
}
