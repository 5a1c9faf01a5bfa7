package uexec_test

import (
	"debug/elf"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/uexec/uexec"
	"github.com/uexec/uexec/execsw"
	"github.com/uexec/uexec/internal/kernelexec"
	"github.com/uexec/uexec/internal/testelf"
	"github.com/uexec/uexec/internal/testenv"
)

// Verdicts of an exec, as the caller and its parent see them.
const (
	completes = "completes"
	killed    = "killed after the point of no return"
)

// nobody is the unprivileged caller of the verdict tests: uid and gid
// 65534, no groups, no capabilities (setpriv --reuid 65534 --regid 65534
// --clear-groups).
var nobody = &kernelexec.Cred{UID: 65534, GID: 65534}

// kernelVerdict execs path natively as cred (nil: this process's ids)
// under PTRACE_TRACEME, which stops before the first instruction, and
// returns the errno, completes or killed; snap is the image of an exec
// that completes.
func kernelVerdict(t *testing.T, path string, cred *kernelexec.Cred) (verdict string, snap *kernelexec.Snap) {
	t.Helper()
	v, s, err := kernelOutcome(path, execAs{cred: cred}, true)
	if err != nil {
		t.Fatalf("kernel: %v", err)
	}
	return v, s
}

// planVerdict plans the same exec as cred.
func planVerdict(t *testing.T, path string, cred *kernelexec.Cred) (string, *execsw.Plan) {
	t.Helper()
	req, err := uexec.SelfRequest(path, []string{"prog"}, []string{"A=1"})
	if err != nil {
		t.Fatal(err)
	}
	req.Dir, req.NoRandom = "/", true
	if cred != nil {
		req.Cred = execsw.Cred{UID: cred.UID, EUID: cred.UID, SUID: cred.UID, FSUID: cred.UID,
			GID: cred.GID, EGID: cred.GID, SGID: cred.GID, FSGID: cred.GID, Groups: cred.Groups}
	}
	p, err := uexec.NewSwitch().Execve(req)
	var errno syscall.Errno
	switch {
	case err == nil && p.Fatal != nil:
		t.Logf("plan: %v", p.Fatal)
		return killed, p
	case err == nil:
		return completes, p
	case errors.As(err, &errno):
		t.Logf("plan: %v", err)
		return errno.Error(), nil
	}
	t.Fatalf("plan: %v", err)
	return "", nil
}

// verdictDir is a directory that uid 65534 may search, for fixtures that
// both callers exec.
func verdictDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "uexec-verdict-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestVerdictsMatchKernel execs files that a differential fuzzer found the
// plan wrong about, natively and as root and uid 65534, and holds the
// plan's verdict (the errno, completes, or killed after the point of no
// return) to the kernel's; an exec that completes must also give the
// kernel's image.
func TestVerdictsMatchKernel(t *testing.T) {
	testenv.NeedRoot(t)
	dir := verdictDir(t)
	write := func(name string, f *testelf.File) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, f.Bytes(), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// The static program at base, its bss page above.
	at := func(base uint64) *testelf.File {
		f := testelf.Static64()
		f.Entry = f.Entry - f.Progs[0].Vaddr + base
		f.Progs[0].Vaddr = base
		f.Progs[1].Vaddr = base + 0x1000
		return f
	}
	pie := testelf.PIE64
	ld := write("ld.so", pie(""))
	ldAt0 := write("ld-at-0", at(0))
	ldOff63 := write("ld-off63", func() *testelf.File { f := pie(""); f.Progs[2].Off += 1 << 63; return f }())
	bss := func(f *testelf.File, vaddr uint64) *testelf.File {
		f.Progs = append(f.Progs, testelf.Prog{Type: elf.PT_LOAD, Flags: elf.PF_R | elf.PF_W, Vaddr: vaddr, Memsz: 0x2000 - vaddr, Align: 0x1000})
		return f
	}
	withInterp := func(f *testelf.File) *testelf.File { f.Interp = ld; return f }
	noLoad := func(typ elf.Type, entry uint64, interp string) *testelf.File {
		return &testelf.File{Type: typ, Entry: entry, Interp: interp, Progs: []testelf.Prog{{Type: elf.PT_GNU_STACK, Flags: elf.PF_R | elf.PF_W}}}
	}
	// p_offset moved by d, congruent to p_vaddr; the data is not written.
	offset := func(f *testelf.File, i int, d uint64) *testelf.File {
		f.Progs[i].Off += d
		f.Progs[i].Data = nil
		return f
	}
	memsz := func(f *testelf.File, i int, n uint64) *testelf.File { f.Progs[i].Memsz = n; return f }
	// A bss one page more than the machine lets one mapping commit (under
	// vm.overcommit_memory 0, RAM plus swap), and one well within.
	m := execsw.MachineFromProc()
	over := uint64(1 << 46)
	if m.CommitPages != 0 && (m.CommitPages+1)<<12 < 1<<46 {
		over = (m.CommitPages + 16) << 12
	}

	tests := []struct {
		name   string
		file   *testelf.File
		nobody bool // ask as uid 65534 too
	}{
		// 1. Below vm.mmap_min_addr: root's exec holds CAP_SYS_RAWIO.
		{name: "ET_EXEC at 0x0", file: at(0), nobody: true},
		{name: "ET_EXEC at 0x1000", file: at(0x1000), nobody: true},
		{name: "ET_EXEC at 0x0 with PT_INTERP", file: withInterp(at(0)), nobody: true},
		{name: "bss only at 0x0", file: bss(testelf.Static64(), 0), nobody: true},
		{name: "bss only at 0x1000", file: bss(testelf.Static64(), 0x1000), nobody: true},
		{name: "ET_DYN with an ET_EXEC interpreter at 0x0", file: pie(ldAt0), nobody: true},

		// 2. No PT_LOAD: nothing is mapped, the exec completes.
		{name: "ET_EXEC without PT_LOAD", file: noLoad(elf.ET_EXEC, 0x401000, ""), nobody: true},
		{name: "ET_DYN without PT_LOAD", file: noLoad(elf.ET_DYN, 0x1000, ""), nobody: true},
		{name: "ET_EXEC without PT_LOAD with PT_INTERP", file: noLoad(elf.ET_EXEC, 0x401000, ld)},
		{name: "ET_DYN without PT_LOAD with PT_INTERP", file: noLoad(elf.ET_DYN, 0x1000, ld)},
		{name: "PT_NOTE only", file: &testelf.File{Type: elf.ET_EXEC, Entry: 0x401000, Progs: []testelf.Prog{{Type: elf.PT_NOTE}}}},

		// 3. Absurd p_offset and p_memsz.
		{name: "ET_EXEC first p_offset 2^63", file: offset(testelf.Static64(), 0, 1<<63)},
		{name: "ET_EXEC bss p_offset 2^63", file: offset(testelf.Static64(), 1, 1<<63)},
		{name: "ET_EXEC bss p_offset below 2^63", file: offset(testelf.Static64(), 1, 1<<63-0x100000)},
		{name: "ET_DYN first p_offset 2^63", file: offset(pie(""), 0, 1<<63)},
		{name: "ET_DYN text p_offset 2^63", file: offset(pie(""), 1, 1<<63)},
		{name: "ET_DYN text p_offset below 2^63", file: offset(pie(""), 1, 1<<63-0x100000)},
		{name: "PIE p_offset 2^63", file: offset(pie(ld), 2, 1<<63)},
		{name: "interpreter p_offset 2^63", file: pie(ldOff63)},
		{name: "ET_EXEC p_memsz near 2^47", file: memsz(testelf.Static64(), 1, 1<<47-0x800000)},
		{name: "ET_EXEC p_memsz 2^46", file: memsz(testelf.Static64(), 1, 1<<46)},
		{name: "ET_EXEC p_memsz beyond the commit limit", file: memsz(testelf.Static64(), 1, over)},
		{name: "ET_EXEC p_memsz 1 GiB", file: memsz(testelf.Static64(), 1, 1<<30)},
		{name: "ET_DYN p_memsz near 2^47", file: memsz(pie(""), 2, 1<<47-0x800000)},
		{name: "ET_DYN p_memsz beyond the commit limit", file: memsz(pie(""), 2, over)},
		{name: "ET_DYN p_memsz 1 GiB", file: memsz(pie(""), 2, 1<<30)},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := write("prog"+string(rune('a'+i)), tt.file)
			creds := []*kernelexec.Cred{nil}
			if tt.nobody {
				creds = append(creds, nobody)
			}
			for _, cred := range creds {
				who := "root"
				if cred != nil {
					who = "uid 65534"
				}
				kv, snap := kernelVerdict(t, path, cred)
				pv, plan := planVerdict(t, path, cred)
				if plan != nil {
					defer plan.Close()
				}
				if pv != kv {
					t.Errorf("as %s: plan %q, kernel %q", who, pv, kv)
					continue
				}
				if snap != nil && plan != nil {
					for _, d := range comparePlan(plan, snap) {
						t.Errorf("as %s: %s", who, d)
					}
				}
			}
		})
	}
}
