package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/internal/testenv"
)

// TestTreeBackgroundJobFg: in an interactive bash on a terminal, `uexec run
// sh script &` whose script reads the terminal, brought to the foreground
// at once with fg, reads what is typed and ends, as natively. The job's
// stop for its background read (SIGTTIN) caught os's one-time check of
// clone(CLONE_PIDFD), a vfork, in uexec (about one start in six): the
// parent thread's vfork wait takes no part in a stop, so uexec never
// stopped and bash waited for it forever. The race needs many tries.
//
// A stop that comes while bash runs the first fg is bash's own race (it
// continues only a job it knows stopped, and then reports the stop), as
// natively for any program that reads that late: the second fg continues
// such a job, and is read by the script otherwise. Either way it must read.
func TestTreeBackgroundJobFg(t *testing.T) {
	needRun(t)
	bash := testenv.NeedTool(t, "bash")
	dir := t.TempDir()
	script := filepath.Join(dir, "rd.sh")
	os.WriteFile(script, []byte("read -r x; echo read=$x\n"), 0o644)
	for i := range 12 {
		out, ok := ptySession(t, bash, []ptyStep{
			{300 * time.Millisecond, uexecBin + " run sh " + script + " &\n"},
			{10 * time.Millisecond, "fg\n"},
			{300 * time.Millisecond, "fg\n"},
			{300 * time.Millisecond, "hello\n"},
		}, "read=", 10*time.Second)
		if !ok || !strings.Contains(out, "read=fg") && !strings.Contains(out, "read=hello") {
			t.Fatalf("try %d: the job did not read and end within 10s:\n%s", i, out)
		}
	}
}

type ptyStep struct {
	after time.Duration
	input string
}

// ptySession runs an interactive shell on a new terminal, types each step's
// input after its delay, and waits up to deadline for want in the output.
func ptySession(t *testing.T, shell string, steps []ptyStep, want string, deadline time.Duration) (string, bool) {
	t.Helper()
	m, s, _ := openPty(t)
	defer m.Close()
	cmd := exec.Command(shell, "--norc", "-i")
	cmd.Env = append(append([]string{}, testEnv...), "PS1=$ ", "TERM=dumb")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = s, s, s
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// The session ends with its leader: the kernel hangs up the
	// terminal's processes, a stuck job's too.
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var mu sync.Mutex
	var out bytes.Buffer
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := m.Read(b)
			mu.Lock()
			out.Write(b[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	for _, st := range steps {
		time.Sleep(st.after)
		m.WriteString(st.input)
	}
	for end := time.Now().Add(deadline); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		got := out.String()
		mu.Unlock()
		if strings.Contains(got, want) {
			return got, true
		}
	}
	mu.Lock()
	defer mu.Unlock()
	return out.String(), false
}

// openPty opens a new pseudo-terminal: its master, its slave (neither the
// controlling terminal of this process) and its number.
func openPty(t *testing.T) (master, slave *os.File, n uint32) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	testenv.Need(t, err == nil, "no pseudo-terminals: %v", err)
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	if n, err = unix.IoctlGetUint32(int(master.Fd()), unix.TIOCGPTN); err != nil {
		t.Fatal(err)
	}
	if slave, err = os.OpenFile("/dev/pts/"+itoaU(n), os.O_RDWR|syscall.O_NOCTTY, 0); err != nil {
		t.Fatal(err)
	}
	return master, slave, n
}
