//go:build linux && amd64

package linux

import (
	"debug/elf"
	"os"
	"path/filepath"
	"testing"

	"github.com/uexec/uexec/internal/testelf"
	"github.com/uexec/uexec/vm"
)

// TestFindPopf: the stub's `popfq; ret` is found in an executable segment
// of the image, where it will be mapped, and not in a segment that is not
// executable nor where the bss clears it.
func TestFindPopf(t *testing.T) {
	exit0 := []byte{0xb8, 60, 0, 0, 0, 0x31, 0xff, 0x0f, 0x05} // exit(0)
	gadget := []byte{0x9d, 0xc3, 0, 0, 0, 0, 0, 0}
	prog := func(name string, flags elf.ProgFlag, filesz, memsz uint64, at uint64) string {
		f := &testelf.File{Type: elf.ET_EXEC, Entry: 0x401000, Progs: []testelf.Prog{
			{Type: elf.PT_LOAD, Flags: elf.PF_R | elf.PF_X, Off: 0x1000, Vaddr: 0x401000, Filesz: 0x10, Memsz: 0x10, Align: 0x1000},
			{Type: elf.PT_LOAD, Flags: flags, Off: 0x2000, Vaddr: 0x402000, Filesz: filesz, Memsz: memsz, Align: 0x1000},
			{Type: elf.PT_GNU_STACK, Flags: elf.PF_R | elf.PF_W},
		}, Blobs: []testelf.Blob{{Off: 0x1000, Data: exit0}, {Off: at, Data: gadget}}, Size: 0x3000}
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, f.Bytes(), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name string
		path string
		want vm.Addr // 0: none
	}{
		{"executable", prog("x", elf.PF_R|elf.PF_X, 0x100, 0x100, 0x2040), 0x402040},
		{"not executable", prog("r", elf.PF_R, 0x100, 0x100, 0x2040), 0},
		{"execute-only", prog("xo", elf.PF_X, 0x100, 0x100, 0x2040), 0},
		{"in the bss's page", prog("bss", elf.PF_R|elf.PF_W|elf.PF_X, 0x20, 0x2000, 0x2040), 0},
		{"within 8 bytes of the mapping's end", prog("end", elf.PF_R|elf.PF_X, 0x1000, 0x1000, 0x2ffa), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := newSwitch(t).Execve(selfRequest(t, tc.path, []string{tc.path}, nil, true))
			if err != nil {
				t.Fatal(err)
			}
			defer plan.Close()
			at, want, ok := findPopf(plan)
			if ok != (tc.want != 0) || at != tc.want || ok && want != 0xc39d {
				t.Errorf("findPopf = %v, %#x, %v; want %v", at, want, ok, tc.want)
			}
			if flags := EntryFlags(plan); flags != map[bool]uint64{true: 0x202, false: 0x246}[ok] {
				t.Errorf("EntryFlags = %#x", flags)
			}
			if tc.want == 0 {
				return
			}
			// The program built: rflags 0x202 at its entry.
			res, _ := runPlan(t, plan, true)
			if res.status.ExitStatus() != 0 {
				t.Errorf("the program: %v", res.status)
			}
		})
	}
}

// FuzzPopfFile: popf-1's contents, whatever they are, parse without a
// panic, and what parses writes back and parses again to the same lines.
func FuzzPopfFile(f *testing.F) {
	f.Add([]byte("fe00 4f8cb 347d8 18aa4fead70d5a00 18ed1c635dca6cd5 1000 26000 1896a\nfe00 3c829 8b50 1 2 2000 4000 ffffffffffffffff\n"))
	f.Add([]byte("1 2 3\n\nzz 1 1 1 1 1 1 1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d := &popfFile{lines: map[popfKey]int64{}}
		d.parse(b)
		again := &popfFile{lines: map[popfKey]int64{}}
		again.parse([]byte(d.format()))
		if len(again.order) != len(d.order) {
			t.Fatalf("%d lines, %d after a round trip", len(d.order), len(again.order))
		}
		for k, at := range d.lines {
			if again.lines[k] != at {
				t.Fatalf("%+v: %d, %d after a round trip", k, at, again.lines[k])
			}
		}
	})
}

// TestPopfFileBounded: popf-1 keeps the popfFileLines most recent ranges,
// so that reading it stays cheap for every exec in place (an unbounded file
// of 435 lines cost --once 350 µs), and what it keeps reads back.
func TestPopfFileBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "popf-1")
	d := &popfFile{path: path, lines: map[popfKey]int64{}}
	d.once.Do(func() {}) // loaded: empty
	for i := range 3 * popfFileLines {
		d.add(popfKey{dev: 1, ino: uint64(i), size: 4096, n: 4096}, int64(i))
		d.add(popfKey{dev: 1, ino: uint64(i), size: 4096, n: 4096}, int64(i)) // again: no new line
	}

	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	again := &popfFile{lines: map[popfKey]int64{}}
	again.parse(b)
	if len(again.order) != popfFileLines {
		t.Fatalf("%d lines, want %d:\n%s", len(again.order), popfFileLines, b)
	}
	for i, k := range again.order {
		if want := uint64(2*popfFileLines + i); k.ino != want || again.lines[k] != int64(want) {
			t.Errorf("line %d: %+v at %d, want ino and at %d", i, k, again.lines[k], want)
		}
	}
	// A range found elsewhere now moves to the end, once.
	k := popfKey{dev: 1, ino: 2*popfFileLines + 1, size: 4096, n: 4096}
	d.add(k, -1)
	times := 0
	for _, o := range d.order {
		if o == k {
			times++
		}
	}
	if n, last := len(d.order), d.order[len(d.order)-1]; n != popfFileLines || last != k || times != 1 || d.lines[k] != -1 {
		t.Errorf("%d ranges kept, the last %+v, it %d times; want %d, %+v at -1 once", n, last, times, popfFileLines, k)
	}
}
