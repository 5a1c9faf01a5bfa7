//go:build linux && amd64

package kernelexec

import (
	"context"
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/internal/testelf"
	"github.com/uexec/uexec/internal/testenv"
)

// skipOrFail skips the test, or fails it when UEXEC_REQUIRE_ALL=1.
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	testenv.Need(t, false, format, args...)
}

// needPtrace skips the test when this process cannot trace a child.
func needPtrace(t *testing.T) {
	t.Helper()
	_, err := Snapshot(context.Background(), Options{Path: "/bin/true", Argv: []string{"true"}})
	if err != nil {
		skipOrFail(t, "ptrace unavailable: %v", err)
	}
}

func needCC(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath(compiler()); err != nil {
		skipOrFail(t, "no C compiler: %v", err)
	}
}

func checkNoChildren(t *testing.T) {
	t.Helper()
	if c := testenv.Children(t); len(c) != 0 {
		t.Errorf("children left behind: %v", c)
	}
}

func TestSnapshotTrueNoRandom(t *testing.T) {
	needPtrace(t)
	opts := Options{Path: "/bin/true", Argv: []string{"true", "a b"}, Envp: []string{"X=1", "EMPTY="}, NoRandom: true}
	a, b := twoSnapshots(t, opts)
	// The AT_RANDOM bytes are the one thing that must differ.
	if d := Compare(a, b, CompareOptions{}); len(d) == 0 {
		t.Errorf("AT_RANDOM bytes identical in two runs")
	}
	checkLinuxEntry(t, a, opts)
	stack, ok := a.Named("[stack]")
	if !ok || stack.End != 0x7ffffffff000 {
		t.Errorf("[stack] = %v, want it to end at 0x7ffffffff000", stack)
	}
	if m, ok := a.Mapping(0x555555554000); !ok || m.Start != 0x555555554000 || m.Offset != 0 {
		t.Errorf("PIE /bin/true not at 0x555555554000: %v", a.Maps)
	}
	if a.Personality&addrNoRandomize == 0 {
		t.Errorf("personality %#x lacks ADDR_NO_RANDOMIZE", a.Personality)
	}
	if p, _ := personality(0xffffffff); p&addrNoRandomize != 0 {
		t.Errorf("ADDR_NO_RANDOMIZE leaked into the test's thread")
	}
	checkNoChildren(t)
}

// checkLinuxEntry checks the contract of linux-exec.md section 5.
func checkLinuxEntry(t *testing.T, s *Snap, opts Options) {
	t.Helper()
	r := s.Regs
	for _, f := range r.fields() {
		switch f.name {
		case "rip", "rsp", "cs", "ss", "eflags", "orig_rax":
		default:
			if f.v != 0 {
				t.Errorf("regs.%s = %#x, want 0", f.name, f.v)
			}
		}
	}
	if r.Cs != 0x33 || r.Ss != 0x2b || r.Eflags != 0x202 || r.Rsp%16 != 0 {
		t.Errorf("cs %#x ss %#x eflags %#x rsp %#x", r.Cs, r.Ss, r.Eflags, r.Rsp)
	}
	if s.FPRegs.Cwd != 0x37f || s.FPRegs.Mxcsr != 0x1f80 {
		t.Errorf("fpregs cwd %#x mxcsr %#x", s.FPRegs.Cwd, s.FPRegs.Mxcsr)
	}
	if s.RseqErr == "" && s.Rseq != (Rseq{}) {
		t.Errorf("rseq registered at entry: %+v", s.Rseq)
	}
	st, err := s.DecodeStack()
	if err != nil {
		t.Fatal(err)
	}
	if int(st.Argc) != len(opts.Argv) || strings.Join(st.ArgvStr, "\x00") != strings.Join(opts.Argv, "\x00") {
		t.Errorf("argv %q, want %q", st.ArgvStr, opts.Argv)
	}
	if strings.Join(st.EnvpStr, "\x00") != strings.Join(opts.Envp, "\x00") {
		t.Errorf("envp %q, want %q", st.EnvpStr, opts.Envp)
	}
	if st.ExecFn != opts.Path || st.Platform != "x86_64" || len(st.Random) != 16 {
		t.Errorf("execfn %q platform %q random %x", st.ExecFn, st.Platform, st.Random)
	}
	if got, want := Compare(s, s, CompareOptions{}), 0; len(got) != want {
		t.Errorf("a snapshot differs from itself:\n%s", joinDiffs(got))
	}
	if entry, _ := s.AuxVal(AT_ENTRY); entry == 0 {
		t.Errorf("no AT_ENTRY")
	}
	if base, _ := s.AuxVal(AT_BASE); base != 0 && r.Rip < base {
		t.Errorf("rip %#x below the interpreter at %#x", r.Rip, base)
	}
	if s.Stat.StartStack != r.Rsp || s.Stat.ArgStart != st.Argv[0] {
		t.Errorf("stat start_stack %#x arg_start %#x; rsp %#x argv[0] %#x", s.Stat.StartStack, s.Stat.ArgStart, r.Rsp, st.Argv[0])
	}
	want := filepath.Base(opts.Path)
	if len(want) > 15 { // TASK_COMM_LEN - 1
		want = want[:15]
	}
	if s.Comm != want || s.Stat.Comm != want {
		t.Errorf("comm %q/%q, want %q", s.Comm, s.Stat.Comm, want)
	}
	if got := string(s.Cmdline); got != strings.Join(opts.Argv, "\x00")+"\x00" {
		t.Errorf("cmdline %q", got)
	}
}

func joinDiffs(ds []Diff) string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString("\t" + d.String() + "\n")
	}
	return b.String()
}

func TestSnapshotStatic(t *testing.T) {
	needPtrace(t)
	needCC(t)
	bin, err := compileC("static-true", "int main(void) { return 0; }\n", []string{"-static", "-O2"})
	if err != nil {
		skipOrFail(t, "cannot build a static program: %v", err)
	}
	opts := Options{Path: bin, Argv: []string{"st"}, Envp: []string{"A=b"}, NoRandom: true}
	a, _ := twoSnapshots(t, opts)
	checkLinuxEntry(t, a, opts)
	if base, ok := a.AuxVal(AT_BASE); !ok || base != 0 {
		t.Errorf("AT_BASE = %#x, want 0 for a static program", base)
	}
	if entry, _ := a.AuxVal(AT_ENTRY); a.Regs.Rip != entry {
		t.Errorf("rip %#x != AT_ENTRY %#x", a.Regs.Rip, entry)
	}
	if stack, _ := a.Named("[stack]"); stack.End != 0x7ffffffff000 {
		t.Errorf("[stack] %v", stack)
	}
	checkNoChildren(t)
}

func TestSnapshotASLR(t *testing.T) {
	needPtrace(t)
	if b, _ := os.ReadFile("/proc/sys/kernel/randomize_va_space"); strings.TrimSpace(string(b)) == "0" {
		t.Skip("ASLR is off")
	}
	progs := []string{"/bin/true"}
	if _, err := exec.LookPath(compiler()); err == nil {
		for _, m := range []ProbeMode{ProbeStaticPIE, ProbeNoPIE} {
			if bin, err := BuildProbe(m); err == nil {
				progs = append(progs, bin)
			}
		}
	}
	for _, prog := range progs {
		t.Run(filepath.Base(prog), func(t *testing.T) {
			opts := Options{Path: prog, Argv: []string{"p"}, Envp: []string{"A=1"}}
			a, err := Snapshot(context.Background(), opts)
			if err != nil {
				t.Fatal(err)
			}
			b, err := Snapshot(context.Background(), opts)
			if err != nil {
				t.Fatal(err)
			}
			if d := Compare(a, b, CompareOptions{AllowRandom: true}); len(d) == 0 {
				t.Errorf("two randomised snapshots compare equal without AllowASLR")
			}
			if d := Compare(a, b, CompareOptions{AllowRandom: true, AllowASLR: true}); len(d) != 0 {
				t.Errorf("two randomised snapshots differ beyond ASLR:\n%s", joinDiffs(d))
			}
			checkLinuxEntry(t, a, opts)
		})
	}
}

func TestSnapshotRlimitStack(t *testing.T) {
	needPtrace(t)
	needCC(t)
	const rlimitStack = 3
	for _, tc := range []struct {
		name string
		lim  uint64
	}{
		{"1MiB", 1 << 20},
		{"unlimited", ^uint64(0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Snapshot(context.Background(), Options{Path: "/bin/true", Argv: []string{"true"}, NoRandom: true,
				Rlimits: []Rlimit{{rlimitStack, tc.lim, tc.lim}}})
			if err != nil {
				t.Fatal(err)
			}
			var line string
			for _, l := range s.Limits {
				if strings.HasPrefix(l, "Max stack size") {
					line = l
				}
			}
			want := "1048576"
			if tc.lim == ^uint64(0) {
				want = "unlimited"
			}
			if f := strings.Fields(line); len(f) < 4 || f[3] != want {
				t.Errorf("limits line %q, want soft %s", line, want)
			}
			if s.Personality&addrNoRandomize == 0 {
				t.Errorf("personality %#x", s.Personality)
			}
			if _, err := s.DecodeStack(); err != nil {
				t.Error(err)
			}
			// RLIMIT_STACK unlimited selects the legacy bottom-up mmap
			// layout: ld.so then lands low, not just below the stack.
			base, _ := s.AuxVal(AT_BASE)
			if legacy := tc.lim == ^uint64(0); legacy != (base < 0x7f0000000000) {
				t.Errorf("AT_BASE %#x with RLIMIT_STACK %s", base, tc.name)
			}
			t.Logf("RLIMIT_STACK %s: AT_BASE %#x", tc.name, base)
		})
	}
	checkNoChildren(t)
}

func TestSnapshotErrors(t *testing.T) {
	needPtrace(t)
	for _, tc := range []struct {
		name  string
		opts  Options
		errno unix.Errno
	}{
		{"missing", Options{Path: "/nonexistent/prog"}, unix.ENOENT},
		{"directory", Options{Path: "/"}, unix.EACCES},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Snapshot(context.Background(), tc.opts)
			if !errors.Is(err, tc.errno) {
				t.Errorf("err = %v, want %v", err, tc.errno)
			}
			tc.opts.Rlimits = []Rlimit{{3, 8 << 20, 8 << 20}}
			if _, err := exec.LookPath(compiler()); err == nil {
				_, err := Snapshot(context.Background(), tc.opts)
				if !errors.Is(err, tc.errno) {
					t.Errorf("through the launcher: err = %v, want %v", err, tc.errno)
				}
			}
		})
	}
	checkNoChildren(t)
}

func TestSnapshotArgcZero(t *testing.T) {
	needPtrace(t)
	s, err := Snapshot(context.Background(), Options{Path: "/bin/true", NoRandom: true})
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.DecodeStack()
	if err != nil {
		t.Fatal(err)
	}
	// Linux 5.18+: an empty argv becomes {""}.
	if st.Argc != 1 || st.ArgvStr[0] != "" {
		t.Errorf("argc %d argv %q", st.Argc, st.ArgvStr)
	}
}

func TestSnapshotCancel(t *testing.T) {
	needPtrace(t)
	ctx, cancel := context.WithCancel(context.Background())
	var pid int
	testHookStopped = func(p int) {
		pid = p
		cancel()
	}
	defer func() { testHookStopped = nil }()
	_, err := Snapshot(ctx, Options{Path: "/bin/true", Argv: []string{"true"}})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if pid == 0 {
		t.Fatal("hook not called")
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
		t.Errorf("pid %d still exists", pid)
	}
	checkNoChildren(t)

	// Already cancelled: nothing starts.
	if _, err := Snapshot(ctx, Options{Path: "/bin/true"}); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v", err)
	}
}

// twoSnapshots snapshots opts twice and checks that, ASLR off, the two
// differ in the AT_RANDOM bytes at most.
func twoSnapshots(t *testing.T, opts Options) (a, b *Snap) {
	t.Helper()
	var err error
	if a, err = Snapshot(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	if b, err = Snapshot(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	if d := Compare(a, b, CompareOptions{AllowRandom: true}); len(d) != 0 {
		t.Errorf("two NoRandom snapshots differ:\n%s", joinDiffs(d))
	}
	return a, b
}

// TestSnapshotCompat: a 32-bit process is read in the tracer's 64-bit
// view (PTRACE_GETREGS; PTRACE_GETREGSET would give the 32-bit layout) and
// its aux vector as 32-bit pairs.
func TestSnapshotCompat(t *testing.T) {
	const entry = 0x8048100
	f := &testelf.File{Class: elf.ELFCLASS32, Type: elf.ET_EXEC, Entry: entry,
		Progs: []testelf.Prog{{Type: elf.PT_LOAD, Flags: elf.PF_R | elf.PF_X, Vaddr: 0x8048000, Filesz: 0x200, Memsz: 0x200, Align: 0x1000}},
		Blobs: []testelf.Blob{{Off: 0x100, Data: testelf.PauseCode}}}
	path := f.Write(t, "prog32")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := Snapshot(ctx, Options{Path: path, Argv: []string{"prog32"}, NoRandom: true})
	if errors.Is(err, unix.ENOEXEC) {
		return // the kernel runs no ELF32 program here: nothing to read
	}
	if err != nil {
		t.Fatal(err)
	}
	if s.Regs.Rip != entry || s.Regs.Cs != user32CS || s.Regs.Rsp == 0 || s.Regs.Rsp > 0xffffffff {
		t.Errorf("rip %#x cs %#x rsp %#x, want %#x, %#x and a 32-bit stack pointer", s.Regs.Rip, s.Regs.Cs, s.Regs.Rsp, entry, user32CS)
	}
	var at uint64
	for _, a := range s.Auxv {
		if a.Type == AT_ENTRY {
			at = a.Val
		}
	}
	if at != entry || s.Auxv[len(s.Auxv)-1].Type != AT_NULL {
		t.Errorf("aux vector %v: AT_ENTRY %#x, want %#x, AT_NULL last", s.Auxv, at, uint64(entry))
	}
}
