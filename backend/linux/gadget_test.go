//go:build linux && amd64

package linux

import (
	"bytes"
	"debug/elf"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/execsw"
	"github.com/uexec/uexec/internal/testelf"
	"github.com/uexec/uexec/vm"
)

// flagsProg writes a static program whose exit status is the low byte of
// rflags at its first instruction (pushfq; pop %rdi; exit), with its
// second PT_LOAD (flags, filesz and memsz, from file offset 0x2000) holding
// the bytes of each blob.
func flagsProg(t *testing.T, name string, flags elf.ProgFlag, filesz, memsz uint64, blobs ...testelf.Blob) string {
	t.Helper()
	code := []byte{0x9c, 0x5f, 0xb8, 60, 0, 0, 0, 0x0f, 0x05}
	f := &testelf.File{Type: elf.ET_EXEC, Entry: 0x401000, Progs: []testelf.Prog{
		{Type: elf.PT_LOAD, Flags: elf.PF_R | elf.PF_X, Off: 0x1000, Vaddr: 0x401000, Filesz: 0x10, Memsz: 0x10, Align: 0x1000},
		{Type: elf.PT_LOAD, Flags: flags, Off: 0x2000, Vaddr: 0x402000, Filesz: filesz, Memsz: memsz, Align: 0x1000},
		{Type: elf.PT_GNU_STACK, Flags: elf.PF_R | elf.PF_W},
	}, Blobs: append([]testelf.Blob{{Off: 0x1000, Data: code}}, blobs...), Size: 0x3000}
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, f.Bytes(), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// gadgetBytes pads a gadget to the 8 bytes the stub checks.
func gadgetBytes(b ...byte) []byte { return append(b, make([]byte, 8-len(b))...) }

var (
	popfRet  = gadgetBytes(0x9d, 0xc3)                               // popfq; ret
	add8Ret  = gadgetBytes(0x48, 0x83, 0xc4, 8, 0xc3)                // add $8, %rsp; ret
	add16Pop = gadgetBytes(0x48, 0x83, 0xc4, 0x10, 0x41, 0x5c, 0xc3) // add $16, %rsp; pop %r12; ret
)

// TestFindFlagsGadget: the bytes that set rflags are found in an
// executable segment of the image, where they will be mapped, and not in a
// segment that is not executable nor where the bss clears them; and the
// program built enters with the rflags EntryFlags says, measured by the
// program itself: 0x202 through `popfq; ret` or through an epilogue whose
// add leaves it for the stack pointer, 0x246 without. An epilogue alone
// gives 0x202 for about half of the stack pointers, which the case's
// argument lengths move; the two kinds together, for every one.
func TestFindFlagsGadget(t *testing.T) {
	blob := func(at uint64, b []byte) testelf.Blob { return testelf.Blob{Off: at, Data: b} }
	for _, tc := range []struct {
		name string
		path string
		want []vm.Addr // 0x202 through one of these; none: never
		some bool      // 0x202 for some stack pointers only
	}{
		{"popfq; ret", flagsProg(t, "x", elf.PF_R|elf.PF_X, 0x100, 0x100, blob(0x2040, popfRet)), []vm.Addr{0x402040}, false},
		{"not executable", flagsProg(t, "r", elf.PF_R, 0x100, 0x100, blob(0x2040, popfRet)), nil, false},
		{"execute-only", flagsProg(t, "xo", elf.PF_X, 0x100, 0x100, blob(0x2040, popfRet)), nil, false},
		{"in the bss's page", flagsProg(t, "bss", elf.PF_R|elf.PF_W|elf.PF_X, 0x20, 0x2000, blob(0x2040, popfRet)), nil, false},
		{"within 8 bytes of the mapping's end", flagsProg(t, "end", elf.PF_R|elf.PF_X, 0x1000, 0x1000, blob(0x2ffa, popfRet)), nil, false},
		{"add $8, %rsp; ret", flagsProg(t, "add0", elf.PF_R|elf.PF_X, 0x100, 0x100, blob(0x2040, add8Ret)), []vm.Addr{0x402040}, true},
		{"add $16, %rsp; pop %r12; ret", flagsProg(t, "add1", elf.PF_R|elf.PF_X, 0x100, 0x100, blob(0x2040, add16Pop)), []vm.Addr{0x402040}, true},
		{"both epilogues", flagsProg(t, "add01", elf.PF_R|elf.PF_X, 0x100, 0x100, blob(0x2040, add16Pop), blob(0x2080, add8Ret)), []vm.Addr{0x402040, 0x402080}, false},
		{"popfq; ret before the epilogues", flagsProg(t, "all", elf.PF_R|elf.PF_X, 0x100, 0x100, blob(0x2040, add16Pop), blob(0x2080, add8Ret), blob(0x20c0, popfRet)), []vm.Addr{0x4020c0}, false},
		// Never 0x202 for an aligned stack (AF), and pop %rsp.
		{"add $8, %rsp; pop %rbx; ret", flagsProg(t, "af", elf.PF_R|elf.PF_X, 0x100, 0x100, blob(0x2040, gadgetBytes(0x48, 0x83, 0xc4, 8, 0x5b, 0xc3))), nil, false},
		{"add $16, %rsp; pop %rsp; ret", flagsProg(t, "rsp", elf.PF_R|elf.PF_X, 0x100, 0x100, blob(0x2040, gadgetBytes(0x48, 0x83, 0xc4, 16, 0x5c, 0xc3))), nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seen := map[uint64]int{}
			for n := range 8 {
				argv := []string{tc.path, strings.Repeat("a", 16*n)}
				plan, err := newSwitch(t).Execve(selfRequest(t, tc.path, argv, nil, true))
				if err != nil {
					t.Fatal(err)
				}
				defer plan.Close()
				sp, aligned := planSP(plan)
				g, ok := findFlagsGadget(plan, sp, aligned)
				if ok && !slices.Contains(tc.want, g.at) || ok && g.flagsAt(sp) != 0x202 || !ok && len(tc.want) > 0 && !tc.some {
					t.Errorf("argv %d: findFlagsGadget = %+v, %v; want one of %#x", n, g, ok, tc.want)
				}
				want := EntryFlags(plan)
				if want != map[bool]uint64{true: 0x202, false: 0x246}[ok] {
					t.Errorf("EntryFlags = %#x with gadget %v", want, ok)
				}
				res, proc := runPlan(t, plan, true)
				if !res.status.Exited() || uint64(res.status.ExitStatus()) != want&0xff {
					t.Errorf("argv %d (sp %v): the program exited with %v, want rflags %#x", n, sp, res.status, want)
				}
				// --verbose says it when they are not the kernel's.
				noted := slices.ContainsFunc(proc.Notes, func(n string) bool { return strings.HasPrefix(n, "rflags at the entry are 0x246") })
				if noted != (want == 0x246) {
					t.Errorf("rflags %#x, notes %q", want, proc.Notes)
				}
				seen[want]++
			}
			if tc.some != (len(seen) == 2) {
				t.Errorf("rflags seen over the stack pointers: %v", seen)
			}
		})
	}
}

// TestGadgetCacheVersions: the gadgets are cached per version of the file
// (its size and change times at its open). A file rewritten in place is
// searched again, and its program enters through its new bytes. Bytes read
// long enough after the version's ctime are used with no read of the file,
// and if they were wrong (a cache this test corrupts), the stub's check
// refuses them before the point of no return: the start fails with ESTALE
// and nothing of the program runs.
func TestGadgetCacheVersions(t *testing.T) {
	path := flagsProg(t, "v", elf.PF_R|elf.PF_X, 0x100, 0x100, testelf.Blob{Off: 0x2040, Data: popfRet})
	gadgetAt := func() (*execsw.Plan, vm.Addr) {
		t.Helper()
		plan, err := newSwitch(t).Execve(selfRequest(t, path, []string{path}, nil, true))
		if err != nil {
			t.Fatal(err)
		}
		sp, aligned := planSP(plan)
		g, ok := findFlagsGadget(plan, sp, aligned)
		if !ok {
			plan.Close()
			t.Fatal("no gadget found")
		}
		return plan, g.at
	}
	plan, at := gadgetAt()
	plan.Close()
	if at != 0x402040 {
		t.Fatalf("gadget at %#x, want 0x402040", at)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteAt(make([]byte, 8), 0x2040)
	if err == nil {
		_, err = f.WriteAt(popfRet, 0x2080)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	plan, at = gadgetAt()
	if at != 0x402080 {
		t.Fatalf("after a rewrite in place: gadget at %#x, want 0x402080", at)
	}
	if res, _ := runPlan(t, plan, true); !res.status.Exited() || res.status.ExitStatus() != 0x02 {
		t.Errorf("after a rewrite in place: the program exited with %v, want rflags 0x202", res.status)
	}
	plan.Close()

	// Corrupt this version's entry: the old offset and bytes, read as if
	// long after the version's ctime.
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	corrupted := 0
	gadgetCache.Range(func(k, v any) bool {
		if key := k.(gadgetKey); key.ino == st.Ino && key.dev == st.Dev && key.ctime == st.Ctim.Nano() && key.off == 0x2000 {
			h := v.(gadgetHit)
			h.offs[0] = 0x40
			copy(h.bytes[0][:], popfRet)
			h.read = key.ctime + 2*gadgetSettled
			gadgetCache.Store(k, h)
			corrupted++
		}
		return true
	})
	if corrupted != 1 {
		t.Fatalf("%d cache entries for the file's second segment now, want 1", corrupted)
	}
	plan, at = gadgetAt()
	defer plan.Close()
	if at != 0x402040 {
		t.Fatalf("a settled entry: gadget at %#x, want the cached 0x402040", at)
	}
	_, err = Start(plan, &Options{Files: []*os.File{nil, nil, nil}})
	if !errors.Is(err, unix.ESTALE) || !strings.Contains(err.Error(), "is the planned bytes") {
		t.Errorf("Start with bytes that are not the file's: %v, want ESTALE from the stub's check", err)
	}
}

// TestAddFlags: the status flags of a 64-bit add, as the SDM defines them.
func TestAddFlags(t *testing.T) {
	for _, tc := range []struct{ a, b, want uint64 }{
		{0x7ffc0000fff0, 8, 0x0},    // 0xf8: seven ones, no carry
		{0x7ffc0000fff8, 8, 0x14},   // 0x00: PF, and a carry out of bit 3
		{0x7ffc0000ff00, 0x18, 0x4}, // 0x18: two ones
		{^uint64(0), 1, 0x1 | 0x4 | 0x10 | 0x40},
		{1 << 62, 1 << 62, 0x4 | 0x80 | 0x800},
		{1 << 63, 1 << 63, 0x1 | 0x4 | 0x40 | 0x800},
	} {
		if got := addFlags(tc.a, tc.b); got != tc.want {
			t.Errorf("addFlags(%#x, %#x) = %#x, want %#x", tc.a, tc.b, got, tc.want)
		}
	}
}

// FuzzDecodeGadget: any 8 bytes decode without a panic, and what decodes
// pops no more than the stub accepts (32 words), starts as it says, and
// ends in the ret it pops the entry with.
func FuzzDecodeGadget(f *testing.F) {
	for _, b := range [][]byte{popfRet, add8Ret, add16Pop, gadgetBytes(0x48, 0x83, 0xc4, 0x78, 0x41, 0x5f, 0x5b, 0xc3)} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		g, ok := decodeGadget(b)
		if !ok {
			return
		}
		if g.words() > 32 || g.words() < 1 {
			t.Fatalf("% x: %d words", b, g.words())
		}
		if !g.popf && (b[0] != 0x48 || int(b[3]) != g.imm || !bytes.Contains(b[4:8], []byte{0xc3})) {
			t.Fatalf("% x: decoded as %+v", b, g)
		}
	})
}

// FuzzGadgetFile: gadgets-1's contents, whatever they are, parse without a
// panic, and what parses writes back and parses again to the same lines.
func FuzzGadgetFile(f *testing.F) {
	f.Add([]byte("fe00 4f8cb 347d8 18aa4fead70d5a00 18ed1c635dca6cd5 1000 26000 1896a ffffffffffffffff ffffffffffffffff ffffffffffffffff ffffffffffffffff\nfe00 3c829 8b50 1 2 2000 4000 ffffffffffffffff 12 ffffffffffffffff 40 ffffffffffffffff\n"))
	f.Add([]byte("1 2 3\n\nzz 1 1 1 1 1 1 1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d := &gadgetFile{lines: map[gadgetKey]gadgetOffs{}}
		d.parse(b)
		again := &gadgetFile{lines: map[gadgetKey]gadgetOffs{}}
		again.parse([]byte(d.format()))
		if len(again.order) != len(d.order) {
			t.Fatalf("%d lines, %d after a round trip", len(d.order), len(again.order))
		}
		for k, offs := range d.lines {
			if again.lines[k] != offs {
				t.Fatalf("%+v: %v, %v after a round trip", k, offs, again.lines[k])
			}
		}
	})
}

// TestGadgetFileBounded: gadgets-1 keeps the gadgetFileLines most recent
// ranges, so that reading it stays cheap for every exec in place (an
// unbounded file of 435 lines cost --once 350 µs), and what it keeps reads
// back.
func TestGadgetFileBounded(t *testing.T) {
	offsOf := func(i int64) gadgetOffs { return gadgetOffs{i, -1, i + 1, -1, 7} }
	path := filepath.Join(t.TempDir(), "gadgets-1")
	d := &gadgetFile{path: path, lines: map[gadgetKey]gadgetOffs{}}
	d.once.Do(func() {}) // loaded: empty
	for i := range 3 * gadgetFileLines {
		d.add(gadgetKey{dev: 1, ino: uint64(i), size: 4096, n: 4096}, offsOf(int64(i)))
		d.add(gadgetKey{dev: 1, ino: uint64(i), size: 4096, n: 4096}, offsOf(int64(i))) // again: no new line
	}

	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	again := &gadgetFile{lines: map[gadgetKey]gadgetOffs{}}
	again.parse(b)
	if len(again.order) != gadgetFileLines {
		t.Fatalf("%d lines, want %d:\n%s", len(again.order), gadgetFileLines, b)
	}
	for i, k := range again.order {
		if want := uint64(2*gadgetFileLines + i); k.ino != want || again.lines[k] != offsOf(int64(want)) {
			t.Errorf("line %d: %+v at %v, want ino %d", i, k, again.lines[k], want)
		}
	}
	// A range found elsewhere now moves to the end, once.
	k := gadgetKey{dev: 1, ino: 2*gadgetFileLines + 1, size: 4096, n: 4096}
	d.add(k, offsOf(-1))
	times := 0
	for _, o := range d.order {
		if o == k {
			times++
		}
	}
	if n, last := len(d.order), d.order[len(d.order)-1]; n != gadgetFileLines || last != k || times != 1 || d.lines[k] != offsOf(-1) {
		t.Errorf("%d ranges kept, the last %+v, it %d times; want %d, %+v once", n, last, times, gadgetFileLines, k)
	}
}
