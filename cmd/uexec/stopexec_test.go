package main

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uexec/uexec/internal/testenv"
)

// stopDeadline bounds every wait of the stop-at-entry tests: a test that
// forgets SIGCONT kills the process group instead of hanging.
const stopDeadline = 30 * time.Second

// stopped is a uexec run --stop-at-entry whose program waits at its entry.
type stopped struct {
	cmd    *exec.Cmd
	pid    int
	out    bytes.Buffer
	stderr *bytes.Buffer // written by the reader of uexec's stderr until scanned
	done   chan struct{} // closed when uexec was reaped
	// scanned is closed when uexec's stderr is read to its end: stderr
	// may be read from then on.
	scanned chan struct{}
}

// startStopped starts argv (a uexec run with --stop-at-entry) in a process
// group of its own and returns once uexec said which pid is stopped.
func startStopped(t *testing.T, argv ...string) *stopped {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stopDeadline)
	t.Cleanup(cancel)
	s := &stopped{cmd: exec.CommandContext(ctx, argv[0], argv[1:]...), stderr: &bytes.Buffer{}, done: make(chan struct{}), scanned: make(chan struct{})}
	s.cmd.Env = testEnv
	s.cmd.Dir = "/"
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	s.cmd.Cancel = func() error { return syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL) }
	s.cmd.WaitDelay = 5 * time.Second
	s.cmd.Stdout = &s.out
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stderr = pw
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	line := make(chan string, 1)
	go func() {
		defer close(s.scanned)
		defer pr.Close()
		sc := bufio.NewScanner(pr)
		sent := false
		for sc.Scan() {
			s.stderr.WriteString(sc.Text() + "\n")
			if !sent && strings.Contains(sc.Text(), "stopped at its entry point") {
				line <- sc.Text()
				sent = true
			}
		}
		if !sent {
			close(line)
		}
	}()
	go func() { s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-s.done:
		case <-time.After(stopDeadline):
		}
	})
	select {
	case l, ok := <-line:
		if !ok {
			<-s.done
			<-s.scanned
			t.Fatalf("%v ended without stopping: %s", argv, s.stderr.String())
		}
		if _, err := fmt.Sscanf(l, "uexec: pid %d stopped at its entry point", &s.pid); err != nil {
			t.Fatalf("message %q: %v", l, err)
		}
	case <-ctx.Done():
		t.Fatalf("%v: no stop within %v", argv, stopDeadline)
	}
	return s
}

// cont sends SIGCONT to the program and waits for uexec's status.
func (s *stopped) cont(t *testing.T) syscall.WaitStatus {
	t.Helper()
	if err := syscall.Kill(s.pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.done:
	case <-time.After(stopDeadline):
		t.Fatalf("uexec did not end within %v of SIGCONT", stopDeadline)
	}
	select {
	case <-s.scanned:
	case <-time.After(stopDeadline):
		t.Fatalf("uexec's stderr still open %v after it ended", stopDeadline)
	}
	return s.cmd.ProcessState.Sys().(syscall.WaitStatus)
}

// procStatus returns the fields of /proc/PID/status.
func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

var (
	gdbValue = regexp.MustCompile(`(?m)^\$(\d+) = (0x[0-9a-f]+)$`)
	gdbAuxv  = regexp.MustCompile(`(?m)^\d+\s+(AT_\w+)\s.*\s(0x[0-9a-f]+)`)
)

// gdbAtEntry attaches gdb -batch to pid and returns $pc, $eflags, the
// general registers that the kernel zeroes (their sum, by OR) and the
// aux vector gdb reads.
func gdbAtEntry(t *testing.T, prefix []string, pid int) (pc, flags, others uint64, auxv map[string]uint64) {
	t.Helper()
	gdb := testenv.NeedTool(t, "gdb")
	args := []string{gdb, "-nx", "-batch", "-p", strconv.Itoa(pid), "-ex", "p/x $pc", "-ex", "p/x $eflags"}
	regs := []string{"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"}
	args = append(args, "-ex", "p/x (long)$"+strings.Join(regs, "|(long)$"), "-ex", "info auxv")
	ctx, cancel := context.WithTimeout(context.Background(), stopDeadline)
	defer cancel()
	full := append(append([]string{}, prefix...), args...)
	out, err := exec.CommandContext(ctx, full[0], full[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v\n%s", full, err, out)
	}
	vals := gdbValue.FindAllStringSubmatch(string(out), -1)
	if len(vals) != 3 {
		t.Fatalf("gdb printed %d values, want 3:\n%s", len(vals), out)
	}
	get := func(i int) uint64 { v, _ := strconv.ParseUint(vals[i][2], 0, 64); return v }
	auxv = map[string]uint64{}
	for _, m := range gdbAuxv.FindAllStringSubmatch(string(out), -1) {
		auxv[m[1]], _ = strconv.ParseUint(m[2], 0, 64)
	}
	if len(auxv) == 0 {
		t.Fatalf("gdb showed no auxv:\n%s", out)
	}
	return get(0), get(1), get(2), auxv
}

// wantEntry is where the kernel starts prog given its aux vector: the
// interpreter's entry (AT_BASE + its e_entry) or the program's (AT_ENTRY).
func wantEntry(t *testing.T, prog string, auxv map[string]uint64) uint64 {
	t.Helper()
	f, err := elf.Open(prog)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b := make([]byte, p.Filesz)
		p.ReadAt(b, 0)
		interp, err := elf.Open(string(bytes.TrimRight(b, "\x00")))
		if err != nil {
			t.Fatal(err)
		}
		defer interp.Close()
		return auxv["AT_BASE"] + interp.Entry
	}
	return auxv["AT_ENTRY"]
}

// TestStopAtEntry runs programs with --stop-at-entry, as root and as an
// ordinary user: the program waits in a plain stop (T, not traced) at its
// first instruction, gdb -p attaches there and sees the kernel's registers
// and aux vector, and after SIGCONT it runs and its status is uexec's.
func TestStopAtEntry(t *testing.T) {
	testenv.NeedRoot(t)
	dir := testenv.SharedTempDir(t)
	bin := filepath.Join(dir, "uexec")
	ub, _ := os.ReadFile(uexecBin)
	os.WriteFile(bin, ub, 0o755)
	static := filepath.Join(dir, "hello-static")
	sb, _ := os.ReadFile(testenv.BuildC(t, "testdata/progs/hello.c", "-static"))
	os.WriteFile(static, sb, 0o755)
	users := []struct {
		name   string
		prefix []string
		// stub: the program is the plan stub's (see stubFlags); an
		// ordinary user's first program is the kernel's exec.
		stub bool
	}{
		{"root", nil, true},
		{"nobody", asNobody(t), false},
	}
	progs := []struct {
		name   string
		argv   []string
		stdout string
		status int
	}{
		{"dynamic", []string{"/bin/sh", "-c", "echo hi; exit 7"}, "hi\n", 7},
		{"static", []string{static, "a b"}, "hello tls=42 argc=2 [" + static + "] [a b]\n", 0},
	}
	for _, u := range users {
		for _, p := range progs {
			t.Run(u.name+"/"+p.name, func(t *testing.T) {
				argv := append(append(append([]string{}, u.prefix...), bin, "run", "--stop-at-entry"), p.argv...)
				s := startStopped(t, argv...)
				st := procStatus(t, s.pid)
				if !strings.HasPrefix(st["State"], "T") || st["TracerPid"] != "0" {
					t.Errorf("State %q TracerPid %q, want T and 0", st["State"], st["TracerPid"])
				}
				pc, flags, others, auxv := gdbAtEntry(t, u.prefix, s.pid)
				if want := wantEntry(t, p.argv[0], auxv); pc != want {
					t.Errorf("gdb's $pc %#x, want the entry %#x", pc, want)
				}
				want := uint64(0x202)
				if u.stub {
					want = stubFlags(t, p.argv[0])
				}
				if flags != want || others != 0 {
					t.Errorf("rflags %#x (want %#x), general registers ORed %#x (want 0)", flags, want, others)
				}
				// A detached tracee that was group-stopped passes through
				// R on its way back into the group stop (__ptrace_unlink wakes
				// it to stop again): it must be stopped again, not run on.
				var state string
				if !waitFor(2*time.Second, func() bool { state = procStatus(t, s.pid)["State"]; return strings.HasPrefix(state, "T") }) {
					t.Errorf("2s after gdb detached: State %q, want T", state)
				}
				ws := s.cont(t)
				if ws.ExitStatus() != p.status || s.out.String() != p.stdout {
					t.Errorf("after SIGCONT: status %v stdout %q, want %d %q; stderr %s", ws, s.out.String(), p.status, p.stdout, s.stderr)
				}
			})
		}
	}
}

// TestStopAtEntryUsage: --once cannot stop (uexec becomes the program).
func TestStopAtEntryUsage(t *testing.T) {
	for _, args := range [][]string{
		{"run", "--once", "--stop-at-entry", "/bin/true"},
		{"plan", "--stop-at-entry", "/bin/true"},
		{"run", "--stop-at-exec", "[", "/bin/true"},
		{"run", "--once", "--stop-at-exec", "*", "/bin/true"},
	} {
		_, stderr, code := runCLI(t, args...)
		if code != exitUsage {
			t.Errorf("%v: status %d, want %d (%s)", args, code, exitUsage, stderr)
		}
	}
}

// TestStopAtExec stops an exec made inside the tree (--stop-at-exec GLOB):
// the exec uexec builds as root, and the one an ordinary user's tree leaves
// to the kernel, stop alike at the entry; the exec log names the pid.
func TestStopAtExec(t *testing.T) {
	testenv.NeedRoot(t)
	dir := testenv.SharedTempDir(t)
	bin := filepath.Join(dir, "uexec")
	ub, _ := os.ReadFile(uexecBin)
	os.WriteFile(bin, ub, 0o755)
	echo, err := filepath.EvalSymlinks("/bin/echo")
	if err != nil {
		t.Skip(err)
	}
	for _, u := range []struct {
		name   string
		prefix []string
		flags  uint64
	}{
		{"root", nil, stubFlags(t, echo)},
		{"nobody", asNobody(t), 0x202}, // the kernel's exec (CONTINUE)
	} {
		// The glob as passed and resolved; and an exec of the first
		// program's own process (exec), which uexec once took for a
		// job-control stop of the program (it stopped itself, and never
		// said the program waited).
		for _, c := range []struct {
			name, glob, script string
			status             int
		}{{"/bin/ech?", "/bin/ech?", "/bin/echo hi; exit 3", 3}, {echo, echo, "/bin/echo hi; exit 3", 3},
			{"exec", echo, "exec /bin/echo hi", 0}} {
			glob := c.glob
			t.Run(u.name+"/"+c.name, func(t *testing.T) {
				argv := append(append([]string{}, u.prefix...), bin, "run", "--log-execs", "-", "--stop-at-exec", glob,
					"/bin/sh", "-c", c.script)
				s := startStopped(t, argv...)
				st := procStatus(t, s.pid)
				if !strings.HasPrefix(st["State"], "T") || st["TracerPid"] != "0" || st["Name"] != "echo" {
					t.Errorf("Name %q State %q TracerPid %q, want echo, T and 0", st["Name"], st["State"], st["TracerPid"])
				}
				pc, flags, others, auxv := gdbAtEntry(t, u.prefix, s.pid)
				if want := wantEntry(t, echo, auxv); pc != want {
					t.Errorf("gdb's $pc %#x, want the entry %#x", pc, want)
				}
				if flags != u.flags || others != 0 {
					t.Errorf("rflags %#x (want %#x), general registers ORed %#x (want 0)", flags, u.flags, others)
				}
				ws := s.cont(t)
				if ws.ExitStatus() != c.status || s.out.String() != "hi\n" {
					t.Errorf("after SIGCONT: status %v stdout %q; stderr %s", ws, s.out.String(), s.stderr)
				}
				if want := fmt.Sprintf(`"pid":%d,`, s.pid); !strings.Contains(s.stderr.String(), want) ||
					!strings.Contains(s.stderr.String(), `"stopped":true`) {
					t.Errorf("exec log lacks the stopped pid %d: %s", s.pid, s.stderr)
				}
			})
		}
	}
}

// stubFlags is rflags at the first instruction of prog built by the plan
// stub (README, Differences): the kernel's 0x202 where the image (prog or
// its interpreter) has, in the first 512 KiB of an executable segment,
// a `popfq; ret` (9d c3), or two function epilogues `add $imm8, %rsp;
// ret` and `add $imm8, %rsp; pop %rbx; ret` (imm a multiple of 16 there),
// which the stub enters it through (one of them leaves 0x202 for any
// stack pointer); else 0x246, the ZF and PF that the register clears
// before its last `ret` leave.
func stubFlags(t *testing.T, prog string) uint64 {
	t.Helper()
	files := []string{prog}
	var add0, add1 bool
	for i := 0; i < len(files); i++ {
		f, err := elf.Open(files[i])
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, p := range f.Progs {
			switch {
			case p.Type == elf.PT_INTERP:
				b, _ := io.ReadAll(p.Open())
				files = append(files, strings.TrimRight(string(b), "\x00"))
			case p.Type == elf.PT_LOAD && p.Flags&elf.PF_X != 0:
				b := make([]byte, min(p.Filesz, 512<<10))
				p.ReadAt(b, 0)
				if i := bytes.Index(b, []byte{0x9d, 0xc3}); i >= 0 && i+8 <= len(b) {
					return 0x202
				}
				for i := 0; i+8 <= len(b); i++ {
					if b[i] != 0x48 || b[i+1] != 0x83 || b[i+2] != 0xc4 || b[i+3] == 0 || b[i+3] >= 0x80 || b[i+3]%8 != 0 {
						continue
					}
					add0 = add0 || b[i+4] == 0xc3
					add1 = add1 || b[i+3]%16 == 0 && b[i+4] == 0x5b && b[i+5] == 0xc3
				}
			}
		}
	}
	if add0 && add1 {
		return 0x202
	}
	if add0 || add1 {
		t.Fatalf("%s has one of the two epilogues: rflags 0x202 for some stack pointers only; test another program", prog)
	}
	return 0x246
}
