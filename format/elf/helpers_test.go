package elf

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/uexec/uexec/execsw"
	"github.com/uexec/uexec/internal/testelf"
	"github.com/uexec/uexec/vm"
)

// Without ASLR, the layout of a 64-bit process on this machine
// (RLIMIT_STACK 8 MiB): mmap_base 0x7ffff7fff000.
func space64() *vm.Layout {
	return &vm.Layout{TaskSize: vm.TaskSize64, StackTop: 0x7ffffffff000, MmapBase: 0x7ffff7fff000, MinAddr: vm.MmapMinAddr}
}

// The ia32 equivalent: stack top 0xffffe000 (IA32_PAGE_OFFSET), mmap_base
// below the 128 MiB minimum stack gap plus the guard gap.
func space32() *vm.Layout {
	return &vm.Layout{TaskSize: vm.TaskSize32, StackTop: 0xffffe000, MmapBase: 0xf7fff000, MinAddr: vm.MmapMinAddr}
}

func openFile(t testing.TB, path string) *vm.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		real = path
	}
	return &vm.File{Path: real, R: f, Size: st.Size()}
}

// newPkg builds the exec package that CheckExec would hand the handler.
func newPkg(t testing.TB, path string, space *vm.Layout) *execsw.Package {
	t.Helper()
	f := openFile(t, path)
	hdr := make([]byte, HeaderSize)
	n, _ := f.R.ReadAt(hdr, 0)
	return &execsw.Package{
		Req:      &execsw.Request{Path: path, NoRandom: true, Machine: &execsw.DefaultMachine},
		Path:     path,
		File:     f,
		Hdr:      hdr,
		HdrValid: n,
		Space:    space,
	}
}

// fsOpener opens interpreters from the host file system.
func fsOpener(t testing.TB) opener {
	return func(path string) (*vm.File, error) {
		if _, err := os.Stat(path); err != nil {
			return nil, err
		}
		return openFile(t, path), nil
	}
}

// mapping is one line of /proc/PID/maps, without device and inode.
type mapping struct {
	Start, End uint64
	Prot       string
	Off        uint64
	Path       string
}

func (m mapping) String() string {
	return fmt.Sprintf("%x-%x %s %08x %s", m.Start, m.End, m.Prot, m.Off, m.Path)
}

// page is the state of one simulated page.
type page struct {
	prot vm.Prot
	path string
	off  uint64
	anon bool
}

// simulate applies cmds (which must be at their planned addresses) to an
// empty address space, page by page, and returns it as /proc/PID/maps
// would show it: adjacent pages merged when their protection and file
// (with contiguous offsets) agree. Reservations that nothing maps over are
// shown as "---p".
func simulate(t testing.TB, cmds []vm.Cmd) []mapping {
	t.Helper()
	pages := map[uint64]page{}
	for _, c := range cmds {
		if c.Op == vm.OpClear {
			continue
		}
		if c.Len%vm.PageSize != 0 || c.Addr.PageOffset() != 0 {
			t.Fatalf("unaligned command %v", c)
		}
		if c.Len > 1<<32 {
			t.Fatalf("command too large to simulate: %v", c)
		}
		for a := uint64(c.Addr); a < uint64(c.Addr)+c.Len; a += vm.PageSize {
			switch c.Op {
			case vm.OpMap:
				pages[a] = page{prot: c.Prot, path: c.File.Path, off: c.Offset + a - uint64(c.Addr)}
			case vm.OpZero, vm.OpReserve:
				pages[a] = page{prot: c.Prot, anon: true}
			case vm.OpUnmap:
				delete(pages, a)
			}
		}
	}
	addrs := make([]uint64, 0, len(pages))
	for a := range pages {
		addrs = append(addrs, a)
	}
	sort.Slice(addrs, func(i, j int) bool { return addrs[i] < addrs[j] })
	var out []mapping
	for _, a := range addrs {
		p := pages[a]
		if n := len(out); n > 0 {
			m := &out[n-1]
			if m.End == a && m.Prot == p.prot.String()+"p" && m.Path == p.path &&
				(p.anon || m.Off+(a-m.Start) == p.off) {
				m.End += vm.PageSize
				continue
			}
		}
		off := p.off
		if p.anon {
			off = 0
		}
		out = append(out, mapping{Start: a, End: a + vm.PageSize, Prot: p.prot.String() + "p", Off: off, Path: p.path})
	}
	return out
}

// parseMaps parses /proc/PID/maps text.
func parseMaps(t testing.TB, s string) []mapping {
	t.Helper()
	var out []mapping
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		var m mapping
		var dev string
		var ino uint64
		f := strings.Fields(line)
		if len(f) < 5 {
			t.Fatalf("bad maps line %q", line)
		}
		if _, err := fmt.Sscanf(f[0], "%x-%x", &m.Start, &m.End); err != nil {
			t.Fatalf("bad maps line %q: %v", line, err)
		}
		m.Prot = f[1]
		fmt.Sscanf(f[2], "%x", &m.Off)
		dev = f[3]
		fmt.Sscanf(f[4], "%d", &ino)
		_ = dev
		if len(f) > 5 {
			m.Path = strings.Join(f[5:], " ")
		}
		if ino == 0 {
			m.Off = 0
		}
		out = append(out, m)
	}
	return out
}

func wantErrno(t *testing.T, err, want error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("got error %v, want one wrapping %v", err, want)
	}
	var fe *FormatError
	if !errors.As(err, &fe) && !strings.Contains(err.Error(), "interpreter") {
		t.Errorf("error %v is not a *FormatError", err)
	}
}

// Fixtures.

// exec64 is a static ET_EXEC program at 0x400000 that pauses.
func exec64() *testelf.File { return testelf.Static64() }

// pie64 is a PIE at 0 with a PT_INTERP, R / R+X / RW+bss segments.
func pie64(interp string) *testelf.File { return testelf.PIE64(interp) }

// loader64 is an ET_DYN program without PT_INTERP (a static-pie, or an
// ld.so) that pauses.
func loader64() *testelf.File {
	f := pie64("")
	f.Entry = 0x1000
	return f
}

type testelfProg = testelf.Prog

// progRO is a read-only PT_LOAD.
func progRO(off, vaddr, filesz, memsz uint64) testelf.Prog {
	return testelf.Prog{Type: elf.PT_LOAD, Flags: elf.PF_R, Off: off, Vaddr: vaddr, Filesz: filesz, Memsz: memsz, Align: 0x1000}
}
