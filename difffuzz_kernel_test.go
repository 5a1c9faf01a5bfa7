package uexec_test

import (
	"context"
	"debug/elf"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/uexec/uexec"
	"github.com/uexec/uexec/execsw"
	uelf "github.com/uexec/uexec/format/elf"
	"github.com/uexec/uexec/format/script"
	"github.com/uexec/uexec/internal/kernelexec"
	"github.com/uexec/uexec/internal/testelf"
	"github.com/uexec/uexec/internal/testenv"
	"github.com/uexec/uexec/vm"
)

var (
	diffFuzzSeed = flag.Uint64("difffuzz.seed", 1, "TestDiffFuzz: the seed of the mutations")
	diffFuzzN    = flag.Int("difffuzz.n", 0, "TestDiffFuzz: how many files (0: $UEXEC_DIFFFUZZ_N, else 5000; 500 with -short)")
	diffFuzzOnly = flag.Int("difffuzz.only", -1, "TestDiffFuzz: run only this mutant (as its report names it)")
	diffFuzzKeep = flag.String("difffuzz.keep", "", "TestDiffFuzz: copy the files of each disagreement into this directory")
)

// diffFuzzBudget is the number of mutants of a run.
func diffFuzzBudget(t *testing.T) int {
	if *diffFuzzN > 0 {
		return *diffFuzzN
	}
	if s := os.Getenv("UEXEC_DIFFFUZZ_N"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("UEXEC_DIFFFUZZ_N=%q: not a positive number", s)
		}
		return n
	}
	if testing.Short() {
		return 500
	}
	return 5000
}

// knownDisagreements are the classes of mutants on which the plan is
// known to differ from the kernel, each with the reason; TestDiffFuzz
// counts them apart and does not fail on them. Keep it short: a class
// belongs here only until the planner is fixed.
var knownDisagreements = []struct {
	class, reason string
	match         func(r *diffResult) bool
}{}

// diffResult is the outcome of one mutant for one caller.
type diffResult struct {
	m       *mutant
	who     string
	kernel  string // errno, completes or killed
	plan    string
	planErr string // why the plan failed (or is fatal)
	image   []string
	note    string // harness trouble: a panic, a hang, an unexpected error
	// bigTopDown: the plan places an image span of 2 MiB or more
	// top-down.
	bigTopDown bool
}

// TestDiffFuzz is the differential fuzzer of the ELF and #! handlers:
// files mutated from the fixtures internal/testelf builds (static ET_EXEC,
// static-pie, PIEs and ET_EXEC programs with the system's ld.so or a
// fixture loader as PT_INTERP, a mutated loader, ELF32 programs) and from
// #! scripts naming real interpreters. The mutations change e_ident,
// e_type, e_machine, e_entry, e_phoff, e_phentsize, e_phnum, p_type,
// p_flags, p_offset, p_vaddr, p_filesz, p_memsz, p_align, PT_INTERP (its
// name, NUL, size and offset, a second one), the file's length, random
// header bytes and the #! line (blanks, NULs, CR, no newline, lengths
// near the 256-byte buffer, other and missing interpreters, itself).
//
// Each mutant is exec'd by the kernel under PTRACE_TRACEME with
// ADDR_NO_RANDOMIZE, which never runs it: the exec fails (the errno),
// stops at its first instruction (completes) or is killed after the point
// of no return (the SIGSEGV stop). The plan of the same exec
// (Switch.Execve, with the same credentials and NoRandom) must give the
// same verdict: the same errno, a plan for an exec that completes, a
// fatal plan for one that is killed. For 1 in 20 of those that complete,
// the plan's image (maps, entry, stack, auxv, mm fields) must be the
// kernel's. Every eighth mutant is also exec'd as uid 65534, and one in 20
// more in the legacy mmap layout (ADDR_COMPAT_LAYOUT), whose image is
// compared whenever it completes. The planner
// must never panic nor take more than 10 s.
//
// ELF32: IA-32 emulation is off on the machines this runs on, so the
// kernel answers ENOEXEC for every ELF32 program (and for a #! script
// naming one). uexec's native switch plans them with the compat layout
// (the backend refuses compat plans); that plan is not comparable and is
// only held to never panicking or hanging. What is compared instead is
// the verdict of a switch whose ELF handler has No32 set, as uexec's on a
// machine without IA-32 emulation.
//
// The run is deterministic: -difffuzz.seed (default 1) and -difffuzz.n
// (or UEXEC_DIFFFUZZ_N; default 5000, 500 with -short) choose the mutants;
// -difffuzz.only=I reruns one; -difffuzz.keep=DIR keeps the files of
// each disagreement. A disagreement found becomes a fixture of
// TestDiffFuzzRegressions; knownDisagreements lists what is not fixed.
func TestDiffFuzz(t *testing.T) {
	testenv.NeedRoot(t)
	n := diffFuzzBudget(t)
	env := writeDiffEnv(t)
	seeds := diffSeeds()
	sw := uexec.NewSwitch()
	cmp := sw
	if v, _, err := kernelOutcome(env.elf32, execAs{}, false); err != nil || v != completes {
		// No IA-32 emulation: uexec's answer there is No32's.
		t.Logf("the kernel does not run ELF32 programs (%q, %v): comparing the verdicts of a No32 switch", v, err)
		cmp = &execsw.Switch{}
		_ = cmp.Add(script.Format{}, execsw.PrioAny)
		_ = cmp.Add(uelf.Format{No32: true}, execsw.PrioAny)
	}

	var (
		mu      sync.Mutex
		results []*diffResult
		stats   = map[string]int{}
	)
	jobs := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range 2 { // the machine's two cores
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				rs := runMutant(env, seeds, i, sw, cmp)
				mu.Lock()
				for _, r := range rs {
					stats[r.kernel]++
					if r.plan != r.kernel || len(r.image) > 0 || r.note != "" {
						results = append(results, r)
					}
				}
				mu.Unlock()
			}
		}()
	}
	if *diffFuzzOnly >= 0 {
		jobs <- *diffFuzzOnly
		n = 1
	} else {
		for i := range n {
			jobs <- i
		}
	}
	close(jobs)
	wg.Wait()
	t.Logf("%d mutants (seed %d) in %v; kernel verdicts: %v", n, *diffFuzzSeed, time.Since(start).Round(time.Millisecond), stats)

	slices.SortFunc(results, func(a, b *diffResult) int { return a.m.index - b.m.index })
	known := map[string]int{}
	failed := 0
	for _, r := range results {
		k := ""
		for _, kd := range knownDisagreements {
			if r.note == "" && kd.match(r) {
				k = kd.class
				break
			}
		}
		if k != "" {
			known[k]++
			continue
		}
		failed++
		if failed > 40 {
			continue
		}
		keepMutant(t, r)
		switch {
		case r.note != "":
			t.Errorf("%v, as %s: %s", r.m, r.who, r.note)
		case r.plan != r.kernel:
			t.Errorf("%v, as %s: plan %q, kernel %q (%s)", r.m, r.who, r.plan, r.kernel, r.planErr)
		default:
			t.Errorf("%v, as %s: image differs:\n\t%s", r.m, r.who, strings.Join(r.image, "\n\t"))
		}
	}
	if failed > 40 {
		t.Errorf("... and %d more disagreements", failed-40)
	}
	for _, kd := range knownDisagreements {
		if known[kd.class] > 0 {
			t.Logf("known disagreement %q (%s): %d mutants", kd.class, kd.reason, known[kd.class])
		}
	}
}

// writeDiffEnv writes the files the seeds and mutations point at.
func writeDiffEnv(t *testing.T) *diffEnv {
	dir := verdictDir(t)
	env := &diffEnv{dir: dir}
	write := func(name string, b []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	env.static = write("static", testelf.Static64().Bytes(), 0o755)
	env.staticPIE = write("static-pie", testelf.PIE64("").Bytes(), 0o755)
	env.script = write("script", []byte("#!/bin/sh\necho x\n"), 0o755)
	env.elf32 = write("elf32", static32().Bytes(), 0o755)
	env.empty = write("empty", nil, 0o755)
	env.noExec = write("noexec", testelf.Static64().Bytes(), 0o644)
	return env
}

// runMutant builds mutant i, execs it natively and plans it, as root and,
// for every eighth, as uid 65534. cmp is the switch whose verdict is
// compared; sw, the native one, must not panic or hang either.
func runMutant(env *diffEnv, seeds []diffSeed, i int, sw, cmp *execsw.Switch) []*diffResult {
	path := filepath.Join(env.dir, "m"+strconv.Itoa(i))
	m := makeMutant(*diffFuzzSeed, i, seeds, env, path)
	defer os.Remove(path)
	if err := writeExec(path, m.main); err != nil {
		return []*diffResult{{m: m, who: "root", note: err.Error()}}
	}
	if m.ld != nil {
		defer os.Remove(path + ".ld")
		if err := writeExec(path+".ld", m.ld); err != nil {
			return []*diffResult{{m: m, who: "root", note: err.Error()}}
		}
	}
	ases := []execAs{{}}
	if i%8 == 0 {
		ases = append(ases, execAs{cred: nobody})
	}
	if i%20 == 10 {
		// Its image is compared too (below): the legacy layout's
		// bottom-up placement.
		ases = append(ases, execAs{legacy: true})
	}
	var rs []*diffResult
	for _, as := range ases {
		r := &diffResult{m: m, who: as.String()}
		rs = append(rs, r)
		var err error
		if r.kernel, _, err = kernelOutcome(path, as, false); err != nil {
			r.note = "kernel: " + err.Error()
			continue
		}
		var plan *execsw.Plan
		r.plan, plan, r.planErr, r.note = planOutcome(cmp, path, as)
		if plan != nil {
			defer plan.Close()
		}
		if r.note != "" {
			continue
		}
		if sw != cmp {
			native, nplan, nerr, note := planOutcome(sw, path, as)
			if nplan != nil {
				nplan.Close()
			}
			switch {
			case note != "":
				r.note = "native switch: " + note
				continue
			case native != r.plan && !strings.Contains(r.planErr, "ELF32 (i386) files are disabled"):
				r.note = fmt.Sprintf("the native switch says %q (%s), the No32 one %q (%s)", native, nerr, r.plan, r.planErr)
				continue
			}
		}
		if r.plan == completes && r.kernel == completes && (i%20 == 0 || as.legacy) {
			r.image = compareImage(path, as, plan)
			for _, c := range plan.Cmds {
				if c.Op == vm.OpReserve && c.Flags&vm.FlagBase != 0 && c.Flags&vm.FlagFixed == 0 && c.Len >= 2<<20 {
					r.bigTopDown = true
				}
			}
		}
	}
	return rs
}

// compareImage holds a plan to the kernel's exec of the same file at its
// first instruction: everything comparePlan compares, for a 64-bit and a
// compat image alike.
func compareImage(path string, as execAs, plan *execsw.Plan) []string {
	_, snap, err := kernelOutcome(path, as, true)
	if err != nil || snap == nil {
		return []string{fmt.Sprintf("kernel: second exec: %v", err)}
	}
	return comparePlan(plan, snap)
}

// writeExec writes an executable file with no fork in between, so that
// no child of another worker holds it open for writing when it is
// exec'd (ETXTBSY): syscall.ForkExec holds syscall.ForkLock while it
// forks.
func writeExec(path string, b []byte) error {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	return os.WriteFile(path, b, 0o755)
}

// execAs is who makes an exec of the fuzzer and how: with cred's ids (nil:
// this process's), in the legacy mmap layout (ADDR_COMPAT_LAYOUT) or not.
type execAs struct {
	cred   *kernelexec.Cred
	legacy bool
}

func (as execAs) String() string {
	who := "root"
	if as.cred != nil {
		who = "uid " + strconv.Itoa(int(as.cred.UID))
	}
	if as.legacy {
		who += ", legacy layout"
	}
	return who
}

// kernelOutcome execs path natively as as says (ids, layout)
// under PTRACE_TRACEME with ADDR_NO_RANDOMIZE: the errno, completes or
// killed; with snap, an exec that completes is snapshotted at its first
// instruction.
func kernelOutcome(path string, as execAs, snap bool) (string, *kernelexec.Snap, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	opts := kernelexec.Options{Path: path, Argv: []string{"prog"}, Envp: []string{"A=1"}, Dir: "/", NoRandom: true, Legacy: as.legacy, Cred: as.cred}
	var s *kernelexec.Snap
	var err error
	if snap {
		s, err = kernelexec.Snapshot(ctx, opts)
	} else {
		_, err = kernelexec.Verdict(ctx, opts)
	}
	var ke *kernelexec.KilledError
	var errno syscall.Errno
	switch {
	case err == nil:
		return completes, s, nil
	case errors.As(err, &ke):
		return killed, nil, nil
	case errors.As(err, &errno):
		return errno.Error(), nil, nil
	}
	return "", nil, err
}

// planOutcome plans the exec of kernelOutcome with sw. note reports a
// panic, a hang or an error without an errno.
func planOutcome(sw *execsw.Switch, path string, as execAs) (verdict string, plan *execsw.Plan, why, note string) {
	req, err := uexec.SelfRequest(path, []string{"prog"}, []string{"A=1"})
	if err != nil {
		return "", nil, "", err.Error()
	}
	req.Dir, req.NoRandom, req.Legacy = "/", true, as.legacy
	if cred := as.cred; cred != nil {
		req.Cred = execsw.Cred{UID: cred.UID, EUID: cred.UID, SUID: cred.UID, FSUID: cred.UID,
			GID: cred.GID, EGID: cred.GID, SGID: cred.GID, FSGID: cred.GID, Groups: cred.Groups}
	}
	type result struct {
		p     *execsw.Plan
		err   error
		panic string
	}
	ch := make(chan result, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				ch <- result{panic: fmt.Sprintf("panic: %v\n%s", v, debug.Stack())}
			}
		}()
		p, err := sw.Execve(req)
		ch <- result{p: p, err: err}
	}()
	var r result
	select {
	case r = <-ch:
	case <-time.After(10 * time.Second):
		return "", nil, "", "the plan took more than 10 s"
	}
	if r.panic != "" {
		return "", nil, "", r.panic
	}
	var errno syscall.Errno
	switch {
	case r.err == nil && r.p.Fatal != nil:
		return killed, r.p, r.p.Fatal.Error(), ""
	case r.err == nil:
		return completes, r.p, "", ""
	case errors.As(r.err, &errno):
		return errno.Error(), nil, r.err.Error(), ""
	}
	return "", nil, "", "plan: an error without an errno: " + r.err.Error()
}

// keepMutant copies a disagreement's files to -difffuzz.keep.
func keepMutant(t *testing.T, r *diffResult) {
	if *diffFuzzKeep == "" {
		return
	}
	if err := os.MkdirAll(*diffFuzzKeep, 0o755); err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(*diffFuzzKeep, "m"+strconv.Itoa(r.m.index))
	os.WriteFile(base, r.m.main, 0o755)
	if r.m.ld != nil {
		os.WriteFile(base+".ld", r.m.ld, 0o755)
	}
}

// TestDiffFuzzRegressions execs the files TestDiffFuzz found the plan
// wrong about, natively and as root and uid 65534, and holds the plan's
// verdict and, when the exec completes, its image to the kernel's.
func TestDiffFuzzRegressions(t *testing.T) {
	testenv.NeedRoot(t)
	env := writeDiffEnv(t)
	sw := uexec.NewSwitch()
	ia32 := true
	if v, _, err := kernelOutcome(env.elf32, execAs{}, false); err != nil || v != completes {
		ia32 = false
	}
	// An ET_EXEC loader whose one PT_LOAD's p_filesz is within a page of
	// 2^64, at a vaddr past TASK_SIZE: the main file of a fixture names
	// it as its interpreter.
	wrapLoader := func(name string, memsz uint64) string {
		f := testelf.Static64()
		f.Progs = f.Progs[:1]
		f.Progs[0].Filesz, f.Progs[0].Vaddr, f.Progs[0].Memsz = 0xfffffffffffff300, 0xffffffffffffe030, memsz
		p := filepath.Join(env.dir, name)
		if err := writeExec(p, f.Bytes()); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// An ELF32 static-pie whose only PT_LOAD is a bss of n bytes at 0.
	bss32 := func(n uint64) []byte {
		f := pie32()
		f.Progs[0].Filesz, f.Progs[0].Memsz = 0, n
		f.Progs[1].Type = 0x2b0 // not a PT_LOAD
		return f.Bytes()
	}
	// f with its second PT_LOAD at vaddr, a page of data and a page of
	// bss: the bss is the stack's top page, where the argument strings
	// are.
	overStrings := func(f *testelf.File, vaddr uint64) []byte {
		f.Progs[1].Vaddr, f.Progs[1].Memsz = vaddr, 0x2000
		return f.Bytes()
	}
	tests := []struct {
		name  string
		file  []byte
		elf32 bool // compared only where the kernel runs ELF32
	}{
		// An entry past 4 GiB with the load bias: the compat aux
		// vector's AT_ENTRY is truncated, the exec completes (seed 504,
		// mutant 8354).
		{name: "ELF32 PIE with an entry past 4 GiB", file: func() []byte {
			f := pie32()
			f.Entry, f.Interp = 0xff758000, env.elf32
			return f.Bytes()
		}(), elf32: true},
		// A first segment that is a bss of nearly 4 GiB: the vdso goes
		// above it, stack_guard_gap (1 MiB) below the stack at the
		// nearest; a page more and there is no room, the exec is killed
		// (seed 506, mutant 38806).
		{name: "ELF32 PIE bss up to the vdso's room", file: bss32(0xffed5000), elf32: true},
		{name: "ELF32 PIE bss a page beyond the vdso's room", file: bss32(0xffed6000), elf32: true},
		// A segment over the argument strings (its bss zeroes their
		// page): create_elf_tables measures them in that memory, and
		// the bss mapping is "[stack]" (seed 542, mutant 29800).
		{name: "ELF32 bss over the argument strings", file: overStrings(static32(), 0xffffc000), elf32: true},
		{name: "bss over the argument strings", file: overStrings(testelf.Static64(), 0x7fffffffd000)},
		// An interpreter whose p_filesz wraps elf_map's size to 0 at an
		// address past TASK_SIZE: nothing is mapped, and the caller of
		// load_elf_interp takes that address for the load address; with
		// a bss above it, elf_load returns first (seed 1002, mutant
		// 22816).
		{name: "interpreter p_filesz wrapping to no mapping", file: testelf.PIE64(wrapLoader("ld-wrap", 0x300)).Bytes()},
		{name: "interpreter p_filesz wrapping to no mapping, with a bss", file: testelf.PIE64(wrapLoader("ld-wrap-bss", 0xfffffffffffff400)).Bytes()},
		// An ELF32 loader placed top-down: the native (64-bit) layout's
		// first try has no room below 4 GiB for it, the compat one has.
		{name: "ELF32 ET_DYN without PT_INTERP", file: pie32().Bytes(), elf32: true},
		// The interpreter "/" (a NUL ends the name): a directory,
		// EACCES, also for a caller whose lookup is walked by uexec.
		{name: "#! naming /", file: []byte("#!/\x00bin/sh\n")},
		{name: "#!/", file: []byte("#!/\n")},
		{name: "#!//", file: []byte("#!// -x\n")},
		// A magic link of procfs as the interpreter: the kernel jumps to
		// the file (the test binary, in a directory only root may
		// search), uexec's walk for uid 65534 searched the way to it.
		{name: "#!/proc/self/exe", file: []byte("#!/proc/self/exe -test.run=none\n")},
		{name: "PT_INTERP /proc/self/exe", file: func() []byte { f := testelf.Static64(); f.Interp = "/proc/self/exe"; return f.Bytes() }()},
		// A loader whose first PT_LOAD has no file bytes: elf_load maps
		// nothing for it, so the kernel places nothing and its bss is
		// at the address asked (at a page at 0 for root), not where an
		// mmap would go (seed 2, mutant 40).
		{name: "ET_DYN loader, first PT_LOAD bss only", file: func() []byte {
			f := testelf.Static64()
			f.Type, f.Entry = elf.ET_DYN, 0x1200
			f.Progs[0].Vaddr, f.Progs[0].Filesz, f.Progs[0].Memsz = 0, 0, 0x400
			f.Progs[1].Vaddr = 0x1000
			return f.Bytes()
		}()},
		// A bss made by vm_brk right below the rest of an earlier
		// segment's bss joins the mapping below it only: two anonymous
		// mappings where an mmap would make one (seed 4, mutant 2300).
		{name: "bss below an earlier bss", file: func() []byte {
			f := testelf.Static64()
			// Not executable: an executable segment's bss is rwx and
			// never joins the data segment's.
			f.Progs[0].Memsz, f.Progs[0].Flags = 0x100000, elf.PF_R
			return f.Bytes()
		}()},
		{name: "ELF32 bss below an earlier bss", file: func() []byte {
			f := static32()
			f.Progs[0].Memsz, f.Progs[0].Flags = 0x55555000, 0
			return f.Bytes()
		}(), elf32: true},
		// A first segment where the stack already is (setup_arg_pages
		// comes before the segments): MAP_FIXED_NOREPLACE fails with
		// EEXIST past the point of no return (seed 7, mutant 6568).
		{name: "ET_EXEC over the stack", file: func() []byte {
			f := testelf.Static64()
			const base = 0x7fffffff0000
			f.Entry, f.Progs[0].Vaddr, f.Progs[1].Vaddr = base+0x200, base, base+0x1000
			return f.Bytes()
		}()},
		{name: "ELF32 ET_EXEC over the stack", file: func() []byte {
			f := static32()
			f.Progs[0].Vaddr = 0xffff6000
			return f.Bytes()
		}(), elf32: true},
		// A later segment (MAP_FIXED) over the stack takes its pages;
		// the piece of the stack below it is no longer "[stack]" (seed
		// 8, mutant 3180).
		{name: "ET_EXEC data segment over the stack", file: func() []byte {
			f := testelf.Static64()
			f.Progs[1].Vaddr = 0x7fffffff0000
			return f.Bytes()
		}()},
		{name: "ELF32 data segment over the stack", file: func() []byte {
			f := static32()
			f.Progs[1].Vaddr = 0xffff9000
			return f.Bytes()
		}(), elf32: true},
		// A PT_INTERP whose offset plus size overflows a file position:
		// kernel_read's rw_verify_area says EINVAL (seed 14, mutant 5236).
		{name: "PT_INTERP offset + size overflows", file: func() []byte {
			f := testelf.Static64()
			f.Interp = "/lib64/ld-linux-x86-64.so.2"
			return setInterpOffset(f.Bytes(), 0x7fffffffffffffff)
		}()},
		// An image that leaves no room for the vdso: installing it comes
		// past the point of no return (seed 16, mutant 4943).
		{name: "ELF32 no room for the vdso", file: func() []byte {
			f := static32()
			f.Entry, f.Progs[0].Vaddr, f.Progs[1].Vaddr = 0x100, 0, 0x1000
			f.Progs[0].Memsz, f.Progs[2].Align = 0xffff9200, 0x200000
			return f.Bytes()
		}(), elf32: true},
		// No room below mmap_base for the vdso: the kernel's top-down
		// search falls back to a bottom-up one from the legacy base
		// (seed 25, mutant 3650).
		{name: "ELF32 vdso placed bottom-up", file: func() []byte {
			f := static32()
			f.Type, f.Entry, f.Progs[0].Vaddr, f.Progs[1].Vaddr = elf.ET_DYN, 0x100, 0, 0x1000
			f.Progs[0].Filesz, f.Progs[0].Memsz, f.Progs[2].Type = 0, 0xff58b000, 0x70000000
			return f.Bytes()
		}(), elf32: true},
		// A bss across the program break is shown as "[heap]"
		// (vma_is_initial_heap; seed 27, mutant 4680).
		{name: "ELF32 bss across the break", file: func() []byte {
			f := static32()
			f.Type, f.Entry, f.Progs[0].Vaddr, f.Progs[1].Vaddr = elf.ET_DYN, 0x100, 0, 0x1000
			f.Progs[0].Memsz = 0xb3608a21
			return f.Bytes()
		}(), elf32: true},
		// The same with a large alignment: the kernel's probe of where
		// the span would go is that bss at 0, and the bias 0; as uid
		// 65534, EPERM below mmap_min_addr past the point of no
		// return (seed 61, mutant 4936).
		{name: "ET_DYN loader aligned 1 GiB, first PT_LOAD bss only", file: func() []byte {
			f := testelf.Static64()
			f.Type, f.Entry = elf.ET_DYN, 0x1200
			f.Progs[0].Vaddr, f.Progs[0].Filesz, f.Progs[0].Memsz = 0, 0, 0x400
			f.Progs[1].Vaddr, f.Progs[1].Align = 0x1000, 0x40000000
			return f.Bytes()
		}()},
		{name: "ELF32 loader aligned 1 GiB, first PT_LOAD bss only", file: func() []byte {
			f := pie32()
			f.Progs[0].Filesz, f.Progs[1].Align = 0, 0x40000000
			return f.Bytes()
		}(), elf32: true},
		// A file offset in the last 2 MiB below 2^63: the kernel's
		// round_up of it (a loff_t) wraps, and the mapping is aligned
		// to the offset modulo 2 MiB however small it is (seed 89,
		// mutant 2220).
		{name: "static-pie, first offset just below 2^63", file: func() []byte {
			f := testelf.PIE64("")
			f.Progs[0].Off = 0x7ffffffffffdf000
			return f.Bytes()
		}()},
		{name: "ET_DYN loader, first PT_LOAD bss only, at 0x10000", file: func() []byte {
			f := testelf.Static64()
			f.Type, f.Entry = elf.ET_DYN, 0x11200
			f.Progs[0].Vaddr, f.Progs[0].Filesz, f.Progs[0].Memsz = 0x10000, 0, 0x400
			f.Progs[1].Vaddr = 0x11000
			return f.Bytes()
		}()},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.elf32 && !ia32 {
				testenv.Need(t, false, "the kernel does not run ELF32 programs")
			}
			path := filepath.Join(env.dir, "fixture"+strconv.Itoa(i))
			if err := writeExec(path, tt.file); err != nil {
				t.Fatal(err)
			}
			for _, as := range []execAs{{}, {cred: nobody}, {legacy: true}} {
				who := as.String()
				kv, _, err := kernelOutcome(path, as, false)
				if err != nil {
					t.Fatalf("as %s: kernel: %v", who, err)
				}
				pv, plan, why, note := planOutcome(sw, path, as)
				if note != "" {
					t.Fatalf("as %s: %s", who, note)
				}
				if plan != nil {
					defer plan.Close()
				}
				if pv != kv {
					t.Errorf("as %s: plan %q, kernel %q (%s)", who, pv, kv, why)
					continue
				}
				if kv == completes {
					for _, d := range compareImage(path, as, plan) {
						t.Errorf("as %s: %s", who, d)
					}
				}
			}
		})
	}
}

// setInterpOffset sets p_offset of the PT_INTERP program header of the
// ELF64 file b.
func setInterpOffset(b []byte, off uint64) []byte {
	le := binary.LittleEndian
	phoff, phnum := le.Uint64(b[32:]), int(le.Uint16(b[56:]))
	for i := range phnum {
		ph := b[phoff+uint64(i)*56:]
		if elf.ProgType(le.Uint32(ph)) == elf.PT_INTERP {
			le.PutUint64(ph[8:], off)
		}
	}
	return b
}
