package sim

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/uexec/uexec/vm"
	"golang.org/x/sys/unix"
)

const base = vm.Addr(0x7ffff7fff000)

func newSpace() *Space {
	return New(vm.Layout{TaskSize: vm.TaskSize64, MmapBase: base, MinAddr: vm.MmapMinAddr})
}

func testFile(path string, size int) *vm.File {
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(i / vm.PageSize)
	}
	return &vm.File{Path: path, R: bytes.NewReader(b), Size: int64(size), Dev: unix.Mkdev(0xfe, 0), Ino: 325835}
}

// TestMapsFormat renders this process's own mappings and compares them with
// /proc/self/maps line for line.
func TestMapsFormat(t *testing.T) {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		line := sc.Text()
		fs := strings.Fields(line)
		if len(fs) < 5 || fs[1][3] != 'p' {
			continue
		}
		lo, hi, _ := strings.Cut(fs[0], "-")
		start, _ := strconv.ParseUint(lo, 16, 64)
		end, _ := strconv.ParseUint(hi, 16, 64)
		off, _ := strconv.ParseUint(fs[2], 16, 64)
		ma, mi, _ := strings.Cut(fs[3], ":")
		maj, _ := strconv.ParseUint(ma, 16, 32)
		min, _ := strconv.ParseUint(mi, 16, 32)
		ino, _ := strconv.ParseUint(fs[4], 10, 64)
		var prot vm.Prot
		for i, c := range "rwx" {
			if fs[1][i] == byte(c) {
				prot |= 1 << i
			}
		}
		m := Mapping{Start: vm.Addr(start), End: vm.Addr(end), Prot: prot}
		name := ""
		if len(line) > 73 {
			name = line[73:]
		}
		if ino != 0 || strings.HasPrefix(name, "/") {
			m.File = &vm.File{Path: name, Dev: unix.Mkdev(uint32(maj), uint32(min)), Ino: ino}
			m.Offset = off
		} else {
			m.Label = name
		}
		if got := m.String(); got != line {
			t.Errorf("rendered\n%q\nwant\n%q", got, line)
		}
		n++
	}
	if n == 0 {
		t.Error("no mappings compared")
	}
}

func TestMapsLines(t *testing.T) {
	s := newSpace()
	f := testFile("/usr/bin/x", 5*vm.PageSize)
	if _, err := s.MapFile(0x555555554000, 0x2000, vm.ProtRead, f, 0, true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MapAnon(0x7ffff7ff0000, 0x1000, vm.ProtRead|vm.ProtWrite, true); err != nil {
		t.Fatal(err)
	}
	if err := s.AddRegion(0x7ffffffde000, 0x7ffffffff000, vm.ProtRead|vm.ProtWrite, "[stack]"); err != nil {
		t.Fatal(err)
	}
	want := "555555554000-555555556000 r--p 00000000 fe:00 325835                     /usr/bin/x\n" +
		"7ffff7ff0000-7ffff7ff1000 rw-p 00000000 00:00 0 \n" +
		"7ffffffde000-7ffffffff000 rw-p 00000000 00:00 0                          [stack]\n"
	if got := s.Maps(); got != want {
		t.Errorf("Maps:\n%s\nwant\n%s", got, want)
	}
	// 32-bit addresses are padded to 8 digits.
	m := Mapping{Start: 0x8048000, End: 0x8049000, Prot: vm.ProtRead | vm.ProtExec}
	if got, want := m.String(), "08048000-08049000 r-xp 00000000 00:00 0 "; got != want {
		t.Errorf("%q, want %q", got, want)
	}
}

func TestSplitMergeProtect(t *testing.T) {
	s := newSpace()
	f := testFile("/lib/ld.so", 16*vm.PageSize)
	// Reserve, map the file over part of it, unmap a hole, protect a
	// piece: the ELF loader's sequence.
	at, err := s.MapAnon(0, 8*vm.PageSize, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	if at != base-8*vm.PageSize {
		t.Fatalf("reserve at %v, want %v", at, base-8*vm.PageSize)
	}
	if _, err := s.MapFile(at, 8*vm.PageSize, vm.ProtRead, f, 0, true); err != nil {
		t.Fatal(err)
	}
	if err := s.Protect(at+vm.PageSize, 2*vm.PageSize, vm.ProtRead|vm.ProtExec); err != nil {
		t.Fatal(err)
	}
	if err := s.Unmap(at+4*vm.PageSize, vm.PageSize); err != nil {
		t.Fatal(err)
	}
	type row struct {
		start, end vm.Addr
		prot       vm.Prot
		off        uint64
	}
	want := []row{
		{at, at + 0x1000, vm.ProtRead, 0},
		{at + 0x1000, at + 0x3000, vm.ProtRead | vm.ProtExec, 0x1000},
		{at + 0x3000, at + 0x4000, vm.ProtRead, 0x3000},
		{at + 0x5000, at + 0x8000, vm.ProtRead, 0x5000},
	}
	got := s.Mappings()
	if len(got) != len(want) {
		t.Fatalf("mappings:\n%s", s.Maps())
	}
	for i, w := range want {
		g := got[i]
		if g.Start != w.start || g.End != w.end || g.Prot != w.prot || g.Offset != w.off || g.File != f {
			t.Errorf("mapping %d: %s, want %v-%v %v off %#x", i, g, w.start, w.end, w.prot, w.off)
		}
	}
	// Protecting back merges the file pieces with contiguous offsets.
	if err := s.Protect(at, 4*vm.PageSize, vm.ProtRead); err != nil {
		t.Fatal(err)
	}
	if n := len(s.Mappings()); n != 2 {
		t.Errorf("after re-protect %d mappings, want 2:\n%s", n, s.Maps())
	}
	// Protecting a range with a hole fails and changes nothing.
	if err := s.Protect(at, 8*vm.PageSize, vm.ProtRead|vm.ProtWrite); !errors.Is(err, unix.ENOMEM) {
		t.Errorf("protect over a hole: %v, want ENOMEM", err)
	}
	if m, _ := s.Lookup(at); m.Prot != vm.ProtRead {
		t.Errorf("failed protect changed %v", m)
	}
	// Anonymous neighbours with equal protection merge.
	s2 := newSpace()
	s2.MapAnon(0x10000, 0x1000, vm.ProtRead, true)
	s2.MapAnon(0x11000, 0x1000, vm.ProtRead, true)
	s2.MapAnon(0x12000, 0x1000, vm.ProtRead|vm.ProtWrite, true)
	if n := len(s2.Mappings()); n != 2 {
		t.Errorf("anon merge: %d mappings:\n%s", n, s2.Maps())
	}
}

func TestReadWrite(t *testing.T) {
	s := newSpace()
	f := testFile("/bin/f", 2*vm.PageSize+100)
	at, err := s.MapFile(0x400000, 3*vm.PageSize, vm.ProtRead, f, vm.PageSize, true)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Read(at+vm.PageSize-2, 4)
	if err != nil || !bytes.Equal(b, []byte{1, 1, 2, 2}) {
		t.Errorf("file read %v %v", b, err)
	}
	// Beyond the end of the file: zeros.
	if b, _ := s.Read(at+vm.PageSize+100, 2); !bytes.Equal(b, []byte{0, 0}) {
		t.Errorf("past EOF %v", b)
	}
	// Writes ignore protection and keep the rest of the page's file bytes.
	if err := s.Write(at+vm.PageSize-1, []byte{9, 9}); err != nil {
		t.Fatal(err)
	}
	if b, _ := s.Read(at+vm.PageSize-2, 4); !bytes.Equal(b, []byte{1, 9, 9, 2}) {
		t.Errorf("after write %v", b)
	}
	if err := s.Write(at+3*vm.PageSize-1, []byte{1, 2}); !errors.Is(err, unix.EFAULT) {
		t.Errorf("write past the mapping: %v", err)
	}
	if _, err := s.Read(0x1000, 1); !errors.Is(err, unix.EFAULT) {
		t.Errorf("read unmapped: %v", err)
	}
	// Mapping over written pages discards the writes.
	if _, err := s.MapAnon(at, vm.PageSize, vm.ProtRead, true); err != nil {
		t.Fatal(err)
	}
	if b, _ := s.Read(at+vm.PageSize-1, 1); !bytes.Equal(b, []byte{0}) {
		t.Errorf("anon over a written page reads %v", b)
	}
}

func TestPlacement(t *testing.T) {
	s := newSpace()
	for _, tc := range []struct {
		name  string
		addr  vm.Addr
		n     uint64
		fixed bool
		want  vm.Addr
		err   error
	}{
		{name: "top down", n: 0x3000, want: base - 0x3000},
		{name: "next below", n: 0x1000, want: base - 0x4000},
		{name: "free hint", addr: 0x10000000, n: 0x2000, want: 0x10000000},
		{name: "unaligned hint rounds down", addr: 0x20000123, n: 0x1000, want: 0x20000000},
		{name: "taken hint", addr: 0x10001000, n: 0x1000, want: base - 0x5000},
		{name: "hint below mmap_min_addr", addr: 0x1000, n: 0x1000, want: base - 0x6000},
		{name: "fixed below mmap_min_addr", addr: 0x1000, n: 0x1000, fixed: true, err: unix.EPERM},
		{name: "fixed unaligned", addr: 0x10000010, n: 0x1000, fixed: true, err: unix.EINVAL},
		{name: "fixed beyond task size", addr: vm.TaskSize64, n: 0x1000, fixed: true, err: unix.ENOMEM},
		{name: "length unaligned", n: 0x1001, err: unix.EINVAL},
		{name: "fixed replaces", addr: 0x10000000, n: 0x1000, fixed: true, want: 0x10000000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.MapAnon(tc.addr, tc.n, vm.ProtRead, tc.fixed)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Errorf("err %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

// TestRun applies hand-made vm commands: a PIE-like image placed by the
// space (FlagBase) with FlagRelative commands following it, a fixed image,
// a read command and a clear.
func TestRun(t *testing.T) {
	s := newSpace()
	f := testFile("/bin/prog", 4*vm.PageSize)
	planned := vm.Addr(0x555555554000)
	cmds := []vm.Cmd{
		// Occupy the planned address so that the base moves.
		{Op: vm.OpZero, Addr: planned, Len: 0x1000, Prot: vm.ProtRead, Flags: vm.FlagFixed},
		{Op: vm.OpReserve, Addr: planned, Len: 0x5000, Flags: vm.FlagBase},
		{Op: vm.OpMap, Addr: planned, Len: 0x2000, Prot: vm.ProtRead, File: f, Offset: 0, Flags: vm.FlagRelative},
		{Op: vm.OpMap, Addr: planned + 0x2000, Len: 0x1000, Prot: vm.ProtRead | vm.ProtExec, File: f, Offset: 0x2000, Flags: vm.FlagRelative},
		{Op: vm.OpUnmap, Addr: planned + 0x3000, Len: 0x1000, Flags: vm.FlagRelative},
		{Op: vm.OpRead, Addr: planned + 0x4010, Len: 0x20, Prot: vm.ProtRead, File: f, Offset: 0x3000, Flags: vm.FlagRelative},
		{Op: vm.OpClear, Addr: planned + 0x1ff0, Len: 0x10, Flags: vm.FlagRelative},
		{Op: vm.OpZero, Addr: 0x600000, Len: 0x1000, Prot: vm.ProtRead | vm.ProtWrite, Flags: vm.FlagFixed},
	}
	out, err := vm.Run(s, cmds)
	if err != nil {
		t.Fatal(err)
	}
	got := out[1].Addr
	if got == planned {
		t.Fatalf("base not moved: %v", got)
	}
	if got != base-0x5000 {
		t.Errorf("base at %v, want the top-down %v", got, base-0x5000)
	}
	delta := got - planned
	for i := 2; i < 7; i++ {
		if out[i].Addr != cmds[i].Addr+delta {
			t.Errorf("command %d at %v, want %v", i, out[i].Addr, cmds[i].Addr+delta)
		}
	}
	maps := s.Maps()
	for _, w := range []string{
		"00600000-00601000 rw-p 00000000 00:00 0 \n",
		"555555554000-555555555000 r--p 00000000 00:00 0 \n",
		"7ffff7ffa000-7ffff7ffc000 r--p 00000000 fe:00 325835                     /bin/prog\n",
		"7ffff7ffc000-7ffff7ffd000 r-xp 00002000 fe:00 325835                     /bin/prog\n",
		"7ffff7ffe000-7ffff7fff000 r--p 00000000 00:00 0 \n",
	} {
		if !strings.Contains(maps, w) {
			t.Errorf("maps lack %q:\n%s", w, maps)
		}
	}
	if n := strings.Count(maps, "\n"); n != 5 {
		t.Errorf("%d mappings:\n%s", n, maps)
	}
	b, _ := s.Read(got+0x4010, 0x20)
	if !bytes.Equal(b, bytes.Repeat([]byte{3}, 0x20)) {
		t.Errorf("read command bytes %v", b)
	}
	b, _ = s.Read(got+0x1fe0, 0x20)
	if !bytes.Equal(b[:0x10], bytes.Repeat([]byte{1}, 0x10)) || !bytes.Equal(b[0x10:], make([]byte, 0x10)) {
		t.Errorf("clear: %v", b)
	}
}

// A bss made below another anonymous mapping stays a mapping of its own
// (vm_brk joins only the mapping below); one made above joins it.
func TestMapBrk(t *testing.T) {
	s := New(vm.Layout{TaskSize: vm.TaskSize64, MmapBase: 0x7f0000000000, MinAddr: 0x10000})
	if _, err := s.MapAnon(0x404000, 0x4000, vm.ProtRead|vm.ProtWrite, true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MapBrk(0x402000, 0x2000, vm.ProtRead|vm.ProtWrite); err != nil {
		t.Fatal(err)
	}
	if n := len(s.Mappings()); n != 2 {
		t.Fatalf("bss below: %d mappings, want 2:\n%s", n, s.Maps())
	}
	if _, err := s.MapBrk(0x408000, 0x1000, vm.ProtRead|vm.ProtWrite); err != nil {
		t.Fatal(err)
	}
	if n := len(s.Mappings()); n != 2 {
		t.Fatalf("bss above: %d mappings, want 2 (joined to the one below):\n%s", n, s.Maps())
	}
	// A change over the kept boundary lets the kernel merge again.
	if err := s.Protect(0x402000, 0x7000, vm.ProtRead|vm.ProtWrite); err != nil {
		t.Fatal(err)
	}
	if n := len(s.Mappings()); n != 1 {
		t.Fatalf("after mprotect: %d mappings, want 1:\n%s", n, s.Maps())
	}
}

// LabelStack leaves the label only on the piece that holds start_stack,
// and gives it to an anonymous mapping that holds it, as the kernel's maps
// do for a bss mapped over the stack's pages (fuzzer seed 542, mutant
// 29800).
func TestLabelStack(t *testing.T) {
	s := New(vm.Layout{TaskSize: vm.TaskSize64, MmapBase: 0x7f0000000000, MinAddr: 0x10000})
	if err := s.AddRegion(0x7ffffffde000, 0x7ffffffff000, vm.ProtRead|vm.ProtWrite, "[stack]"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MapAnon(0x7ffffffe0000, 0x1000, vm.ProtRead, true); err != nil {
		t.Fatal(err)
	}
	s.LabelStack(0x7fffffffe000)
	m := s.Mappings()
	if len(m) != 3 || m[0].Label != "" || m[1].Label != "" || m[2].Label != "[stack]" {
		t.Fatalf("maps:\n%s", s.Maps())
	}
	if _, err := s.MapAnon(0x7fffffffd000, 0x2000, vm.ProtRead|vm.ProtWrite|vm.ProtExec, true); err != nil {
		t.Fatal(err)
	}
	s.LabelStack(0x7fffffffe000)
	for _, x := range s.Mappings() {
		if want := x.Start == 0x7fffffffd000; (x.Label == "[stack]") != want {
			t.Errorf("%v: label %q", x, x.Label)
		}
	}
	// vma_is_initial_heap is asked first: a mapping that holds both the
	// break and start_stack is "[heap]".
	s.LabelHeap(0x7fffffffd000, 0x7fffffffe000)
	if m, ok := s.Lookup(0x7fffffffd000); !ok || m.Label != "[heap]" {
		t.Errorf("the mapping across the break and start_stack: %v, want [heap]", m)
	}
}
