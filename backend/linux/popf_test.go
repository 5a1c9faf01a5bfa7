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
