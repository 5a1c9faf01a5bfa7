package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRunSignalEnds: a SIGTERM to uexec while it opens its log (a FIFO no
// one reads) ends it, as it would end env(1) (it was held for a program
// not yet started, for good); one while it waits for the descendants of a
// first program that has exited lets them go (their later execs the
// kernel's) and uexec exits with the program's status at once.
func TestRunSignalEnds(t *testing.T) {
	needRun(t)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	mark := filepath.Join(dir, "mark")
	late := `(sleep 1; /bin/echo late > ` + mark + `) </dev/null >/dev/null 2>&1 & exit 3`
	for _, c := range []struct {
		name string
		argv []string
		want func(syscall.WaitStatus) bool
	}{
		{"a FIFO log", []string{"run", "--log-execs", fifo, "/bin/true"}, func(ws syscall.WaitStatus) bool { return ws.Signaled() && ws.Signal() == syscall.SIGTERM }},
		{"descendants", []string{"run", "sh", "-c", late}, func(ws syscall.WaitStatus) bool { return ws.Exited() && ws.ExitStatus() == 3 }},
	} {
		cmd := exec.Command(uexecBin, c.argv...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if ws := signalAfter(t, cmd, syscall.SIGTERM, 700*time.Millisecond); !c.want(ws) {
			t.Errorf("%s: uexec ended %v", c.name, cmd.ProcessState)
		}
	}
	// The released descendant's exec of echo, the kernel's.
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if b, err := os.ReadFile(mark); err == nil && string(b) == "late\n" {
			break
		}
		if time.Now().After(end) {
			t.Fatal("the released descendant's exec failed")
		}
	}
}

// TestRunSignalBeforeStart: SIGUSR1, SIGUSR2 and SIGQUIT to uexec while it
// opens its log (a FIFO no one reads) end it by that signal, without a core
// file or a word, as they would end env(1) before its exec (the Go runtime
// alone dropped the first two and printed a stack dump for SIGQUIT).
func TestRunSignalBeforeStart(t *testing.T) {
	needRun(t)
	dir := t.TempDir()
	for _, sig := range []syscall.Signal{syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGQUIT} {
		fifo := filepath.Join(dir, "fifo-"+sig.String())
		if err := syscall.Mkfifo(fifo, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(uexecBin, "run", "--log-execs", fifo, "/bin/true")
		cmd.Dir = dir
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ws := signalAfter(t, cmd, sig, 2*time.Second)
		if !ws.Signaled() || ws.Signal() != sig || ws.CoreDump() || stderr.Len() != 0 {
			t.Errorf("%v: uexec ended %v, stderr %q", sig, cmd.ProcessState, stderr.String())
		}
	}
}

// signalAfter sends sig to the started cmd 0.3 s after its start and
// returns its wait status; one still running within after of the signal
// is killed and fails the test.
func signalAfter(t *testing.T, cmd *exec.Cmd, sig syscall.Signal, after time.Duration) syscall.WaitStatus {
	t.Helper()
	time.Sleep(300 * time.Millisecond)
	cmd.Process.Signal(sig)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(after):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%v: uexec did not end within %v of %v", cmd.Args, after, sig)
	}
	return cmd.ProcessState.Sys().(syscall.WaitStatus)
}
