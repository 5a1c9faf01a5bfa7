package uexec_test

import (
	"context"
	"debug/elf"
	"errors"
	"strconv"

	"fmt"
	"golang.org/x/sys/unix"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uexec/uexec"
	"github.com/uexec/uexec/execsw"
	"github.com/uexec/uexec/internal/kernelexec"
	"github.com/uexec/uexec/internal/testelf"
	"github.com/uexec/uexec/internal/testenv"
	"github.com/uexec/uexec/stack"
)

// TestPlanMatchesKernel plans execs of real programs with ASLR off and
// compares the plan with what the kernel gives the same exec at its first
// instruction: every mapping, the entry and stack pointer, the whole initial
// stack byte for byte (but the 16 AT_RANDOM bytes), the aux vector and the
// mm fields of /proc/PID/stat.
func TestPlanMatchesKernel(t *testing.T) {
	testenv.NeedRoot(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "hello.c")
	os.WriteFile(src, []byte("#include <stdio.h>\nint main(void){puts(\"hi\");return 0;}\n"), 0o644)
	gosrc := filepath.Join(dir, "hello.go")
	os.WriteFile(gosrc, []byte("package main\nfunc main(){println(\"hi\")}\n"), 0o644)
	script := filepath.Join(dir, "script")
	os.WriteFile(script, []byte("#!/bin/sh -e\necho hi\n"), 0o755)
	progs := []struct {
		name   string
		path   string
		argv   []string
		stack  uint64 // RLIMIT_STACK; 0 keeps this process's
		legacy bool   // ADDR_COMPAT_LAYOUT (setarch -L)
	}{
		{"true", "/bin/true", []string{"true"}, 0, false},
		{"ls", "/bin/ls", []string{"ls", "-l", "/"}, 0, false},
		{"python3", "/usr/bin/python3", []string{"python3", "-c", "pass"}, 0, false},
		{"sh", "/bin/sh", []string{"sh"}, 0, false},
		{"dynamic PIE", testenv.BuildC(t, src), []string{"hello"}, 0, false},
		{"non-PIE", testenv.BuildC(t, src, "-no-pie"), []string{"hello", "x"}, 0, false},
		{"static", testenv.BuildC(t, src, "-static"), []string{"hello"}, 0, false},
		{"static-pie", testenv.BuildC(t, src, "-static-pie"), []string{"hello", ""}, 0, false},
		{"go", testenv.BuildGo(t, gosrc), []string{"hello"}, 0, false},
		{"go PIE", testenv.BuildGo(t, gosrc, "-buildmode=pie"), []string{"hello"}, 0, false},
		{"script", script, []string{"script", "a", "b"}, 0, false},
		{"argc 0", "/bin/true", nil, 0, false},
		{"relative path", "../../bin/true", []string{"true"}, 0, false},
		{"unlimited stack", "/bin/ls", []string{"ls"}, unix.RLIM_INFINITY, false},
		{"unlimited stack static-pie", testenv.BuildC(t, src, "-static-pie"), []string{"hello"}, unix.RLIM_INFINITY, false},
		{"small stack", "/bin/true", []string{"true"}, 256 << 10, false},
		// The legacy layout places the interpreter, a static-pie program
		// and the vdso bottom-up from TASK_UNMAPPED_BASE.
		{"legacy ls", "/bin/ls", []string{"ls"}, 0, true},
		{"legacy python3", "/usr/bin/python3", []string{"python3", "-c", "pass"}, 0, true},
		{"legacy static", testenv.BuildC(t, src, "-static"), []string{"hello"}, 0, true},
		{"legacy static-pie", testenv.BuildC(t, src, "-static-pie"), []string{"hello"}, 0, true},
		{"legacy go PIE", testenv.BuildGo(t, gosrc, "-buildmode=pie"), []string{"hello"}, 0, true},
		{"legacy unlimited stack", "/bin/ls", []string{"ls"}, unix.RLIM_INFINITY, true},
	}
	envp := []string{"HOME=/root", "PATH=/usr/bin:/bin", "LANG=C", "A="}
	sw := uexec.NewSwitch()
	for _, p := range progs {
		t.Run(p.name, func(t *testing.T) {
			if _, err := os.Stat(p.path); err != nil && p.name != "relative path" {
				testenv.Need(t, false, "%s: %v", p.path, err)
			}
			req, err := uexec.SelfRequest(p.path, p.argv, envp)
			if err != nil {
				t.Fatal(err)
			}
			req.Dir, req.NoRandom, req.Legacy = "/usr/lib", true, p.legacy
			var rlimits []kernelexec.Rlimit
			if p.stack != 0 {
				req.RlimitStack = p.stack
				rlimits = []kernelexec.Rlimit{{Resource: unix.RLIMIT_STACK, Cur: p.stack, Max: unix.RLIM_INFINITY}}
			}
			plan, err := sw.Execve(req)
			if err != nil {
				t.Fatalf("plan: %v", err)
			}
			defer plan.Close()
			snap, err := kernelexec.Snapshot(context.Background(), kernelexec.Options{
				Path: p.path, Argv: p.argv, Envp: envp, Dir: "/usr/lib", NoRandom: true, Legacy: p.legacy, Rlimits: rlimits})
			if err != nil {
				t.Fatalf("kernel: %v", err)
			}
			for _, d := range comparePlan(plan, snap) {
				t.Error(d)
			}
		})
	}
}

// comparePlan lists the differences between a plan and a snapshot of the
// kernel's exec.
func comparePlan(p *execsw.Plan, s *kernelexec.Snap) []string {
	var diffs []string
	diff := func(what string, plan, kernel any) {
		if fmt.Sprint(plan) != fmt.Sprint(kernel) {
			diffs = append(diffs, fmt.Sprintf("%s: plan %v, kernel %v", what, plan, kernel))
		}
	}
	diff("rip", fmt.Sprintf("%#x", uint64(p.Entry)), fmt.Sprintf("%#x", s.Regs.Rip))
	diff("rsp", fmt.Sprintf("%#x", uint64(p.Stack.SP)), fmt.Sprintf("%#x", s.Regs.Rsp))

	maps, err := p.Maps()
	if err != nil {
		return append(diffs, "plan maps: "+err.Error())
	}
	var kmaps []string
	for _, m := range s.Maps {
		kmaps = append(kmaps, mapLine(m))
	}
	if len(maps) != len(kmaps) {
		diffs = append(diffs, fmt.Sprintf("maps: plan has %d, kernel %d", len(maps), len(kmaps)))
	}
	for i := 0; i < len(maps) || i < len(kmaps); i++ {
		var a, b string
		if i < len(maps) {
			a = maps[i]
		}
		if i < len(kmaps) {
			b = kmaps[i]
		}
		diff(fmt.Sprintf("maps[%d]", i), a, b)
	}

	// The stack, from rsp to the top, with the random bytes masked.
	ks := append([]byte(nil), s.Stack...)
	ps := append([]byte(nil), p.Stack.Bytes...)
	if len(ks) != len(ps) {
		diffs = append(diffs, fmt.Sprintf("stack: plan %d bytes, kernel %d", len(ps), len(ks)))
	} else {
		off := int(uint64(p.Stack.RandomAddr) - uint64(p.Stack.SP))
		if off >= 0 && off+16 <= len(ks) {
			copy(ks[off:off+16], make([]byte, 16))
			copy(ps[off:off+16], make([]byte, 16))
		}
		for i := range ks {
			if ks[i] != ps[i] {
				diffs = append(diffs, fmt.Sprintf("stack byte at %#x: plan %#x, kernel %#x", uint64(p.Stack.SP)+uint64(i), ps[i], ks[i]))
				break
			}
		}
	}
	var kaux []string
	for _, a := range s.Auxv {
		kaux = append(kaux, fmt.Sprintf("%s=%#x", stack.AuxType(a.Type), a.Val))
	}
	var paux []string
	for _, a := range p.Stack.Auxv {
		paux = append(paux, fmt.Sprintf("%s=%#x", a.Type, a.Value))
	}
	diff("auxv", paux, kaux)
	m := p.MM
	st := s.Stat
	diff("start_code", uint64(m.StartCode), st.StartCode)
	diff("end_code", uint64(m.EndCode), st.EndCode)
	diff("start_data", uint64(m.StartData), st.StartData)
	diff("end_data", uint64(m.EndData), st.EndData)
	diff("start_brk", uint64(m.StartBrk), st.StartBrk)
	diff("start_stack", uint64(m.StartStack), st.StartStack)
	diff("arg_start", uint64(m.ArgStart), st.ArgStart)
	diff("arg_end", uint64(m.ArgEnd), st.ArgEnd)
	diff("env_start", uint64(m.EnvStart), st.EnvStart)
	diff("env_end", uint64(m.EnvEnd), st.EnvEnd)
	diff("comm", p.Comm, s.Comm)
	return diffs
}

// mapLine renders a kernel mapping as /proc/PID/maps shows it.
func mapLine(m kernelexec.Mapping) string {
	var maj, min uint32
	fmt.Sscanf(m.Dev, "%x:%x", &maj, &min)
	s := fmt.Sprintf("%08x-%08x %s %08x %02x:%02x %d ", m.Start, m.End, m.Perms, m.Offset, maj, min, m.Inode)
	if m.Path != "" {
		for len(s) < 25+8*6-1 {
			s += " "
		}
		s += " " + m.Path
	}
	return s
}

// TestPlanStackLimit: an initial stack larger than RLIMIT_STACK cannot be
// written by the kernel after the point of no return: the plan is fatal.
func TestPlanStackLimit(t *testing.T) {
	sw := uexec.NewSwitch()
	for _, tc := range []struct {
		rlim  uint64
		env   int
		fatal bool
	}{{0, 10, true}, {16 << 10, 5000, false}, {8 << 20, 5000, false}} {
		req, err := uexec.SelfRequest("/bin/true", []string{"true"}, []string{"A=" + strings.Repeat("x", tc.env)})
		if err != nil {
			t.Fatal(err)
		}
		req.RlimitStack = tc.rlim
		p, err := sw.Execve(req)
		if err != nil {
			t.Fatalf("RLIMIT_STACK %d: %v", tc.rlim, err)
		}
		if (p.Fatal != nil) != tc.fatal {
			t.Errorf("RLIMIT_STACK %d: fatal %v, want %v", tc.rlim, p.Fatal, tc.fatal)
		}
		p.Close()
	}
}

// TestPlanByDescriptor plans execveat(fd, "", AT_EMPTY_PATH) (fexecve), as
// measured on Linux 6.18: AT_EXECFN is /dev/fd/N, comm is the loaded file's
// name (a script's interpreter), a script reached through an O_CLOEXEC
// descriptor is ENOENT.
func TestPlanByDescriptor(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "myscript")
	os.WriteFile(script, []byte("#!/bin/cat -A\n"), 0o755)
	sw := uexec.NewSwitch()
	for _, tc := range []struct {
		name    string
		file    string
		cloexec bool
		comm    string
		chain   string
		err     error
	}{
		{"elf", "/bin/cat", false, "cat", "elf,interp", nil},
		{"elf cloexec", "/bin/cat", true, "cat", "elf,interp", nil},
		{"script", script, false, "cat", "script,elf,interp", nil},
		{"script cloexec", script, true, "", "", unix.ENOENT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := os.Open(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			path := "/dev/fd/" + strconv.Itoa(int(f.Fd()))
			req, err := uexec.SelfRequest(path, []string{"x"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.File, req.CloseOnExec = f, tc.cloexec
			p, err := sw.Execve(req)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("got %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			var chain []string
			for _, l := range p.Chain {
				chain = append(chain, l.Format)
			}
			if got := strings.Join(chain, ","); got != tc.chain {
				t.Errorf("chain %s, want %s", got, tc.chain)
			}
			if p.Comm != tc.comm {
				t.Errorf("comm %q, want %q", p.Comm, tc.comm)
			}
			if p.Image.Args.ExecFn != path {
				t.Errorf("AT_EXECFN %q, want %q", p.Image.Args.ExecFn, path)
			}
			if tc.chain == "script,elf,interp" && (len(p.Image.Args.Argv) < 3 || p.Image.Args.Argv[2] != path) {
				t.Errorf("script argv %q, want the /dev/fd name as the script path", p.Image.Args.Argv)
			}
		})
	}
}

// TestPlanCompat plans 32-bit (ia32) programs with the compat layout: they
// cannot run on these machines, but the plan must be the kernel's.
func TestPlanCompat(t *testing.T) {
	dir := t.TempDir()
	static := &testelf.File{Class: elf.ELFCLASS32, Type: elf.ET_EXEC, Entry: 0x8049000, Progs: []testelf.Prog{
		{Type: elf.PT_LOAD, Flags: elf.PF_R | elf.PF_X, Off: 0, Vaddr: 0x8048000, Filesz: 0x1100, Memsz: 0x1100, Align: 0x1000},
		{Type: elf.PT_LOAD, Flags: elf.PF_R | elf.PF_W, Off: 0x2000, Vaddr: 0x804a000, Filesz: 0x10, Memsz: 0x2000, Align: 0x1000, Data: make([]byte, 0x10)},
		{Type: elf.PT_GNU_STACK, Flags: elf.PF_R | elf.PF_W},
	}}
	path := filepath.Join(dir, "prog32")
	os.WriteFile(path, static.Bytes(), 0o755)
	req, err := uexec.SelfRequest(path, []string{"prog32", "a"}, []string{"X=1"})
	if err != nil {
		t.Fatal(err)
	}
	req.NoRandom = true
	p, err := uexec.NewSwitch().Execve(req)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if !p.Compat {
		t.Fatal("not a compat plan")
	}
	if p.Image.Top != 0xffffe000 || p.Image.Platform != "i686" {
		t.Errorf("stack top %#x platform %q, want 0xffffe000 i686", uint64(p.Image.Top), p.Image.Platform)
	}
	if p.Stack.SP%16 != 0 || uint64(p.Stack.SP) > 0xffffe000 {
		t.Errorf("sp %#x", uint64(p.Stack.SP))
	}
	if a := p.Stack.Auxv; len(a) < 2 || a[0].Type != stack.AT_SYSINFO || a[1].Type != stack.AT_SYSINFO_EHDR {
		t.Errorf("compat auxv starts %v, want AT_SYSINFO, AT_SYSINFO_EHDR", a[:2])
	}
	for _, c := range p.Cmds {
		if end, _ := c.End(); uint64(end) > 0xffffe000 {
			t.Errorf("vm command beyond the compat address space: %v", c)
		}
	}
	if p.Entry != 0x8049000 {
		t.Errorf("entry %#x", uint64(p.Entry))
	}
}

// TestPlanSetIDLayout: the layout of a set-id exec follows its credentials,
// as begin_new_exec decides it before setup_new_exec: the caller's
// ADDR_NO_RANDOMIZE is cleared (PER_CLEAR_ON_SETID, also when the ids stay),
// unless randomize_va_space is 0, and a secure exec lays mmap_base out for
// a stack limit of 8 MiB at most.
func TestPlanSetIDLayout(t *testing.T) {
	testenv.NeedRoot(t) // files of another owner
	dir := t.TempDir()
	install := func(name string, uid int, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		b, err := os.ReadFile("/bin/true")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, uid, uid); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	plain := install("plain", 0, 0o755)
	rootSUID := install("root-suid", 0, 0o755|os.ModeSetuid)
	nobodySUID := install("nobody-suid", 65534, 0o755|os.ModeSetuid)
	cred, err := uexec.SelfCred()
	if err != nil {
		t.Fatal(err)
	}
	sw := uexec.NewSwitch()
	plan := func(path string, rlimit uint64, noRandomize bool) *execsw.Plan {
		t.Helper()
		m := *execsw.MachineFromProc()
		m.NoRandomize = noRandomize
		req := &execsw.Request{Path: path, Argv: []string{path}, Dir: "/", Root: "/", Cred: cred,
			RlimitStack: rlimit, RlimitData: unix.RLIM_INFINITY, NoRandom: true, Machine: &m,
			Rand: strings.NewReader(strings.Repeat("\xa5", 4096))}
		p, err := sw.Execve(req)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		t.Cleanup(func() { p.Close() })
		return p
	}
	const top = 0x7ffffffff000 // the stack top without randomisation
	if p := plan(plain, 8<<20, false); p.Layout.StackTop != top {
		t.Errorf("plain file under ADDR_NO_RANDOMIZE: stack top %v, want %#x", p.Layout.StackTop, top)
	}
	if p := plan(rootSUID, 8<<20, false); p.Layout.StackTop == top || !p.Cred.PerClear {
		t.Errorf("set-uid-root file by root under ADDR_NO_RANDOMIZE: stack top %v (PerClear %v), want it randomised", p.Layout.StackTop, p.Cred.PerClear)
	}
	if p := plan(rootSUID, 8<<20, true); p.Layout.StackTop != top {
		t.Errorf("set-uid file with randomize_va_space 0: stack top %v, want %#x", p.Layout.StackTop, top)
	}
	want := plan(plain, 8<<20, true).Layout.MmapBase
	if big := plan(plain, 1<<30, true).Layout.MmapBase; big == want {
		t.Fatalf("a 1 GiB stack limit leaves mmap_base at %v, as 8 MiB does", big)
	}
	if p := plan(nobodySUID, 1<<30, true); !p.Cred.Secure || p.Layout.MmapBase != want {
		t.Errorf("secure exec under a 1 GiB stack limit: mmap_base %v (secure %v), want %v (8 MiB's)", p.Layout.MmapBase, p.Cred.Secure, want)
	}
	if p := plan(rootSUID, 1<<30, true); p.Cred.Secure || p.Layout.MmapBase == want {
		t.Errorf("set-uid-root file by root (not secure) under a 1 GiB stack limit: mmap_base %v, want the 1 GiB one", p.Layout.MmapBase)
	}
}
