package main

import (
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/uexec/uexec/internal/testelf"
	"github.com/uexec/uexec/internal/testenv"
)

// exit32 is a static ELF32 program that exits with status 7 (int 0x80).
func exit32() *testelf.File {
	code := []byte{0xb8, 0x01, 0, 0, 0, 0xbb, 0x07, 0, 0, 0, 0xcd, 0x80}
	return &testelf.File{Class: elf.ELFCLASS32, Type: elf.ET_EXEC, Entry: 0x8048100,
		Progs: []testelf.Prog{{Type: elf.PT_LOAD, Flags: elf.PF_R | elf.PF_X, Vaddr: 0x8048000, Filesz: 0x200, Memsz: 0x200, Align: 0x1000}},
		Blobs: []testelf.Blob{{Off: 0x100, Data: code}}}
}

// A 32-bit program runs where the kernel runs it, and fails with ENOEXEC
// where the kernel has no IA-32 emulation, as natively. uexec has no
// 32-bit stub: the kernel's exec of the same request is the plan, so run,
// --once and a tree's exec of it are the kernel's, with its status.
func TestRun32Bit(t *testing.T) {
	needRun(t)
	prog := exit32().Write(t, "exit32")
	err := exec.Command(prog).Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee) && ee.ExitCode() == 7:
		for _, argv := range [][]string{
			{uexecBin, "run", "--build", prog},
			{uexecBin, "run", "--once", prog},
			{uexecBin, "run", "--build", "/bin/sh", "-c", prog + "; exit $?"},
		} {
			if r := runCmd(t, "", "", argv...); r.status.ExitStatus() != 7 || r.stderr != "" {
				t.Errorf("%v: %v, want status 7 as natively", argv[1:], r)
			}
		}
		// --verbose says why the kernel did it, once: not that
		// /proc/PID/exe needed a capability root has.
		for _, argv := range [][]string{{uexecBin, "run", "--build", "--verbose", prog}, {uexecBin, "run", "--once", "--verbose", prog}} {
			r := runCmd(t, "", "", argv...)
			if n := strings.Count(r.stderr, "uexec: note: "); n != 1 || !strings.Contains(r.stderr, "note: a 32-bit image") {
				t.Errorf("%v: %d notes, want one, the 32-bit image's:\n%s", argv[1:], n, r.stderr)
			}
		}
	case errors.Is(err, syscall.ENOEXEC):
		for _, argv := range [][]string{{uexecBin, "plan", prog}, {uexecBin, "run", "--once", prog}} {
			if r := runCmd(t, "", "", argv...); r.status.ExitStatus() != 126 || !strings.Contains(r.stderr, "(ENOEXEC)") {
				t.Errorf("%v: %v, want exit 126 and ENOEXEC as the kernel's", argv[1:], r)
			}
		}
	default:
		t.Fatalf("natively: %v, want status 7 or ENOEXEC", err)
	}
}

// TestTree32BitCaller64BitExec: a 32-bit process that execs through the
// x86-64 system call (in 64-bit mode, after a far jump) is redirected to
// the stub like any 64-bit caller, and runs as natively: ptrace's register
// view of a tracee follows its current code segment, so uexec reads and
// writes its registers in the 64-bit layout.
func TestTree32BitCaller64BitExec(t *testing.T) {
	needRun(t)
	prog := testenv.BuildC(t, "testdata/progs/gate64.s", "-m32", "-nostdlib", "-static")
	compareTree(t, prog)
	if err := exec.Command(prog).Run(); errors.Is(err, syscall.ENOEXEC) {
		return // the kernel runs no ELF32 program here, nor uexec (compared above)
	}
	log := filepath.Join(t.TempDir(), "execs.log")
	r := runCmd(t, "", "/", uexecBin, "run", "--build", "--log-execs", log, prog)
	b, _ := os.ReadFile(log)
	if r.stdout != "gate\n" || !strings.Contains(string(b), `"path":"/bin/echo"`) || !strings.Contains(string(b), `"by":"uexec"`) {
		t.Errorf("%v; log:\n%s\nwant gate, and /bin/echo's exec by uexec", r, b)
	}
}

// TestLogFirstByKernel: the exec log says "by":"kernel", and why, for a
// first program that the kernel execs, as it does for the tree's later
// execs: a 32-bit program (no 32-bit stub), and any program of an ordinary
// user's (only the kernel's exec makes /proc/PID/exe the program's), in a
// tree and in place (--once). (TestSpawnKernel checks Process.Kernel.)
func TestLogFirstByKernel(t *testing.T) {
	needRun(t)
	dir := testenv.SharedTempDir(t)
	prog32 := filepath.Join(dir, "exit32")
	if err := os.WriteFile(prog32, exit32().Bytes(), 0o755); err != nil {
		t.Fatal(err)
	}
	runs32 := !errors.Is(exec.Command(prog32).Run(), syscall.ENOEXEC)
	for _, c := range []struct {
		name   string
		prefix []string
		prog   string
		note   string
	}{
		{"root, 32-bit", nil, prog32, "a 32-bit image"},
		{"uid 65534", asNobody(t), "/bin/true", "/proc/PID/exe needs"},
	} {
		if c.prog == prog32 && !runs32 {
			continue
		}
		for _, mode := range [][]string{nil, {"--once"}} {
			log := filepath.Join(dir, "execs.log")
			os.Remove(log)
			if err := os.WriteFile(log, nil, 0o666); err != nil {
				t.Fatal(err)
			}
			os.Chmod(log, 0o666)
			argv := append(append(append(append([]string{}, c.prefix...), uexecBin, "run", "--build", "--log-execs", log), mode...), c.prog)
			runCmd(t, "", "/", argv...)
			b, _ := os.ReadFile(log)
			first, _, _ := strings.Cut(string(b), "\n")
			if !strings.Contains(first, `"by":"kernel"`) || !strings.Contains(first, c.note) {
				t.Errorf("%s %v: first exec logged as %s, want by the kernel, %q", c.name, mode, first, c.note)
			}
		}
	}
}

// TestRun32BitUnderEmulRoot: a 32-bit program found under the emulation
// root is the stub's to build (the kernel's exec would find another file)
// and uexec has no 32-bit stub: the first program and --once fail with
// ENOEXEC (exit 126), as a tree's exec of it does, whatever the kernel's
// IA-32 emulation.
func TestRun32BitUnderEmulRoot(t *testing.T) {
	needRun(t)
	emul := t.TempDir()
	if err := os.MkdirAll(emul+"/bin", 0o755); err != nil {
		t.Fatal(err)
	}
	b := exit32().Bytes()
	if err := os.WriteFile(emul+"/bin/uexec-test-exit32", b, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, mode := range [][]string{{"run"}, {"run", "--once"}} {
		argv := append(append([]string{uexecBin}, mode...), "--emul-root", emul, "/bin/uexec-test-exit32")
		if r := runCmd(t, "", "", argv...); r.status.ExitStatus() != 126 || !strings.Contains(r.stderr, "(ENOEXEC)") {
			t.Errorf("%v: %v, want exit 126 and ENOEXEC", argv[1:], r)
		}
	}
}
