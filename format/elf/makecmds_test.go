package elf

import (
	"debug/elf"
	"errors"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/execsw"
	"github.com/uexec/uexec/internal/testelf"
	"github.com/uexec/uexec/vm"
)

func TestMakeCmdsErrors(t *testing.T) {
	dir := t.TempDir()
	ld := loader64().Write(t, "ld.so")
	write := func(name string, b []byte) string {
		p := dir + "/" + name
		if err := os.WriteFile(p, b, 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	interpProg := func(off, size uint64, data []byte) *testelf.File {
		f := exec64()
		f.Progs = append([]testelf.Prog{{Type: elf.PT_INTERP, Off: off, Filesz: size, Memsz: size, Data: data}}, f.Progs...)
		return f
	}
	elf32 := func(f *testelf.File) *testelf.File {
		f.Class = elf.ELFCLASS32
		return f
	}
	tests := []struct {
		name   string
		file   *testelf.File
		space  *vm.Layout
		format Format
		req    func(*execsw.Request) // changes the request (caller, machine)
		want   error
		reason string
	}{
		{name: "PT_INTERP of 1 byte", file: interpProg(0x800, 1, []byte{0}), want: unix.ENOEXEC, reason: "PT_INTERP of 1 bytes"},
		{name: "PT_INTERP of 4097 bytes", file: interpProg(0x800, 4097, make([]byte, 4097)), want: unix.ENOEXEC, reason: "PT_INTERP"},
		{name: "PT_INTERP not NUL-terminated", file: interpProg(0x800, 4, []byte("/abc")), want: unix.ENOEXEC, reason: "NUL"},
		{name: "PT_INTERP short read", file: interpProg(0x100000, 8, nil), want: unix.EIO, reason: "short read of PT_INTERP"},
		{name: "interpreter missing", file: pie64(dir + "/nonexistent"), want: unix.ENOENT},
		{name: "interpreter shorter than a header", file: pie64(write("short", make([]byte, 63))), want: unix.EIO, reason: "read 63 of 64"},
		{name: "interpreter not ELF", file: pie64(write("text", []byte(strings.Repeat("#!/bin/sh\n", 10)))), want: unix.ELIBBAD, reason: "not an ELF"},
		{name: "interpreter wrong machine", file: pie64(write("arm", (&testelf.File{Machine: elf.EM_AARCH64, Progs: []testelf.Prog{{Type: elf.PT_LOAD}}}).Bytes())), want: unix.ELIBBAD, reason: "e_machine"},
		{name: "interpreter ELF32 for ELF64 program", file: pie64(write("i386", elf32(loader64()).Bytes())), want: unix.ELIBBAD, reason: "e_machine EM_386"},
		{name: "interpreter bad phentsize", file: pie64(write("badph", (&testelf.File{Progs: []testelf.Prog{{Type: elf.PT_LOAD}}, Patch: le16(testelf.Off64Phentsize, 1)}).Bytes())), want: unix.ELIBBAD, reason: "e_phentsize"},
		{name: "interpreter no program headers", file: pie64(write("noph", (&testelf.File{}).Bytes())), want: unix.ELIBBAD},
		{name: "only the first PT_INTERP counts", file: func() *testelf.File {
			f := pie64(ld)
			f.Progs = append(f.Progs, testelf.Prog{Type: elf.PT_INTERP, Off: 0x10, Filesz: 1})
			return f
		}()},
		{name: "ELF32 disabled", file: elf32(exec64()), format: Format{No32: true}, want: unix.ENOEXEC, reason: "ELF32"},

		// After the point of no return.
		{name: "p_filesz > p_memsz", file: func() *testelf.File { f := exec64(); f.Progs[1].Filesz = 0x4000; return f }(), want: ErrFatal, reason: "p_filesz > p_memsz"},
		{name: "p_offset not congruent to p_vaddr", file: func() *testelf.File { f := exec64(); f.Progs[1].Off = 0x1010; return f }(), want: ErrFatal, reason: "congruent"},
		{name: "entry beyond TASK_SIZE", file: func() *testelf.File { f := exec64(); f.Entry = 1 << 47; return f }(), want: ErrFatal, reason: "entry point"},
		// A caller without CAP_SYS_RAWIO (cap_mmap_addr).
		{name: "segment below mmap_min_addr", file: func() *testelf.File { f := exec64(); f.Progs[0].Vaddr = 0x1000; return f }(), want: ErrFatal, reason: "mmap_min_addr"},
		{name: "bss below mmap_min_addr", file: func() *testelf.File {
			f := exec64()
			f.Progs = append(f.Progs, testelf.Prog{Type: elf.PT_LOAD, Flags: elf.PF_R | elf.PF_W, Vaddr: 0, Memsz: 0x2000, Align: 0x1000})
			return f
		}(), want: ErrFatal, reason: "bss at 0x0 is below mmap_min_addr"},
		{name: "segment below mmap_min_addr with CAP_SYS_RAWIO runs", file: func() *testelf.File { f := exec64(); f.Progs[0].Vaddr = 0; return f }(),
			space: func() *vm.Layout { l := space64(); l.RawIO = true; return l }()},
		{name: "segment at a lower mmap_min_addr runs", file: func() *testelf.File { f := exec64(); f.Progs[0].Vaddr = 0x1000; return f }(),
			space: func() *vm.Layout { l := space64(); l.MinAddr = 0x1000; return l }()},
		{name: "p_offset near 2^63", file: func() *testelf.File { f := exec64(); f.Progs[1].Off += 1 << 63; f.Progs[1].Data = nil; return f }(), want: ErrFatal, reason: "EOVERFLOW"},
		{name: "writable bss start beyond the end of the file", file: func() *testelf.File {
			f := exec64()
			f.Progs[1].Off += 1<<63 - 0x100000
			f.Progs[1].Data = nil
			return f
		}(), want: ErrFatal, reason: "padzero faults (EFAULT)"},
		{name: "read-only segment beyond the end of the file runs", file: func() *testelf.File {
			f := exec64()
			f.Progs[1].Off += 0x100000
			f.Progs[1].Flags = elf.PF_R
			f.Progs[1].Data = nil
			return f
		}()},
		{name: "bss beyond the commit limit", file: func() *testelf.File { f := exec64(); f.Progs[1].Memsz = 30 << 30; return f }(), want: ErrFatal, reason: "ENOMEM",
			req: func(r *execsw.Request) {
				r.Machine = &execsw.Machine{MmapMinAddr: vm.MmapMinAddr, CommitPages: 20 << 30 >> 12}
			}},
		{name: "bss within the commit limit runs", file: func() *testelf.File { f := exec64(); f.Progs[1].Memsz = 19 << 30; return f }(),
			req: func(r *execsw.Request) {
				r.Machine = &execsw.Machine{MmapMinAddr: vm.MmapMinAddr, CommitPages: 20 << 30 >> 12}
			}},
		{name: "segment beyond TASK_SIZE", file: func() *testelf.File {
			f := exec64()
			f.Progs[1].Vaddr = 1<<47 - 0x1000
			f.Progs[1].Off = 0x1000
			return f
		}(), want: ErrFatal, reason: "TASK_SIZE"},
		{name: "memsz wraps", file: func() *testelf.File { f := exec64(); f.Progs[1].Memsz = ^uint64(0); return f }(), want: ErrFatal},
		// Linux 6.18 maps nothing and the exec succeeds.
		{name: "ET_DYN without PT_LOAD runs", file: &testelf.File{Type: elf.ET_DYN, Progs: []testelf.Prog{{Type: elf.PT_NOTE}}}},
		{name: "ET_EXEC without PT_LOAD runs", file: &testelf.File{Type: elf.ET_EXEC, Entry: 0x401000, Progs: []testelf.Prog{{Type: elf.PT_GNU_STACK}}}},
		{name: "interpreter ET_REL", file: pie64(write("rel", func() []byte { f := loader64(); f.Type = elf.ET_REL; return f.Bytes() }())), want: ErrFatal, reason: "ET_REL"},
		{name: "interpreter without PT_LOAD", file: pie64(write("noload", (&testelf.File{Type: elf.ET_DYN, Progs: []testelf.Prog{{Type: elf.PT_NOTE}}}).Bytes())), want: ErrFatal, reason: "no PT_LOAD"},
		{name: "garbage section headers run", file: func() *testelf.File { f := exec64(); f.GarbageSections = true; return f }()},
		{name: "bogus EI_CLASS runs", file: func() *testelf.File { f := exec64(); f.Patch = func(b []byte) { b[4] = 9 }; return f }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.file.Write(t, "prog")
			space := tt.space
			if space == nil {
				space = space64()
				if tt.file.Class == elf.ELFCLASS32 {
					space = space32()
				}
			}
			epp := newPkg(t, path, space)
			if tt.req != nil {
				tt.req(epp.Req)
			}
			err := tt.format.makeCmds(epp, fsOpener(t))
			wantErrno(t, err, tt.want)
			if err != nil && !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q does not say %q", err, tt.reason)
			}
			if err != nil && !errors.Is(tt.want, ErrFatal) && len(epp.Cmds) != 0 {
				t.Errorf("an errno before the point of no return left commands: %v", epp.Cmds)
			}
		})
	}
}

func TestMakeCmdsInfo(t *testing.T) {
	ld := loader64().Write(t, "ld.so")
	ld32 := func() string { f := loader64(); f.Class = elf.ELFCLASS32; return f.Write(t, "ld32.so") }()
	tests := []struct {
		name  string
		file  *testelf.File
		space *vm.Layout
		want  execsw.ELFInfo
		entry vm.Addr
		flags execsw.Flags
	}{
		{name: "ET_EXEC", file: exec64(), entry: 0x400200, want: execsw.ELFInfo{
			Phdr: 0x400040, Phent: 56, Phnum: 3, Entry: 0x400200,
			StartCode: 0x400000, EndCode: 0x400300, StartData: 0x401000, EndData: 0x401010, StartBrk: 0x404000,
		}},
		{name: "PIE", file: pie64(ld), entry: 0x7ffff7ff8000 + 0x1000, want: execsw.ELFInfo{
			Phdr: 0x555555554040, Phent: 56, Phnum: 5, Entry: 0x555555555000, Interp: ld,
			InterpBase: 0x7ffff7ff8000, InterpEntry: 0x7ffff7ff9000,
			StartCode: 0x555555555000, EndCode: 0x555555555100, StartData: 0x555555557e00, EndData: 0x555555558100,
			StartBrk: 0x55555555b000,
		}},
		{name: "static-pie brk at ELF_ET_DYN_BASE", file: loader64(), entry: 0x7ffff7ff9000, want: execsw.ELFInfo{
			Phdr: 0x7ffff7ff8040, Phent: 56, Phnum: 4, Entry: 0x7ffff7ff9000,
			StartCode: 0x7ffff7ff9000, EndCode: 0x7ffff7ff9100, StartData: 0x7ffff7ffbe00, EndData: 0x7ffff7ffc100,
			StartBrk: 0x555555555000,
		}},
		{name: "ELF32 PIE at 0x56555000, READ_IMPLIES_EXEC", space: space32(), flags: execsw.Flag32, entry: 0xf7ff9000,
			file: func() *testelf.File {
				f := pie64(ld32)
				f.Class = elf.ELFCLASS32
				f.Progs = f.Progs[:3] // no PT_GNU_STACK
				return f
			}(),
			want: execsw.ELFInfo{
				Phdr: 0x56555034, Phent: 32, Phnum: 4, Entry: 0x56556000, Interp: ld32,
				InterpBase: 0xf7ff8000, InterpEntry: 0xf7ff9000,
				StartCode: 0x56556000, EndCode: 0x56556100, StartData: 0x56558e00, EndData: 0x56559100,
				StartBrk: 0x5655c000, ExecStack: true, ReadImpliesExec: true,
			}},
		{name: "PT_GNU_STACK last wins", file: func() *testelf.File {
			f := exec64()
			f.Progs = append(f.Progs, testelf.Prog{Type: elf.PT_GNU_STACK, Flags: elf.PF_R | elf.PF_W | elf.PF_X})
			return f
		}(), entry: 0x400200, want: execsw.ELFInfo{
			Phdr: 0x400040, Phent: 56, Phnum: 4, Entry: 0x400200,
			StartCode: 0x400000, EndCode: 0x400300, StartData: 0x401000, EndData: 0x401010, StartBrk: 0x404000, ExecStack: true,
		}},
		{name: "AT_PHDR is the load bias when no PT_LOAD holds the table", file: func() *testelf.File {
			f := exec64()
			f.Phoff = 0x2000
			return f
		}(), entry: 0x400200, want: execsw.ELFInfo{
			Phdr: 0, Phent: 56, Phnum: 3, Entry: 0x400200,
			StartCode: 0x400000, EndCode: 0x400300, StartData: 0x401000, EndData: 0x401010, StartBrk: 0x404000,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			space := tt.space
			if space == nil {
				space = space64()
			}
			epp := newPkg(t, tt.file.Write(t, "prog"), space)
			if err := (Format{}).makeCmds(epp, fsOpener(t)); err != nil {
				t.Fatal(err)
			}
			if epp.ELF != tt.want {
				t.Errorf("ELF info\n got %+v\nwant %+v", epp.ELF, tt.want)
			}
			if epp.Entry != tt.entry {
				t.Errorf("entry %v, want %v", epp.Entry, tt.entry)
			}
			if epp.Flags != tt.flags {
				t.Errorf("flags %v, want %v", epp.Flags, tt.flags)
			}
			if tt.want.ReadImpliesExec {
				for _, c := range epp.Cmds {
					if c.Prot&vm.ProtRead != 0 && c.Prot&vm.ProtExec == 0 {
						t.Errorf("READ_IMPLIES_EXEC: %v is not executable", c)
					}
				}
			}
			wantChain := []execsw.Link{{Format: "elf", Path: epp.Path}}
			if tt.want.Interp != "" {
				wantChain = append(wantChain, execsw.Link{Format: "interp", Path: tt.want.Interp})
			}
			if len(epp.Chain) != len(wantChain) || epp.Chain[0] != wantChain[0] || epp.Chain[len(epp.Chain)-1] != wantChain[len(wantChain)-1] {
				t.Errorf("chain %v, want %v", epp.Chain, wantChain)
			}
			// The image is recorded as used.
			if len(epp.Space.Used) == 0 {
				t.Error("no range taken in the layout")
			}
		})
	}
}

// With ASLR, a PIE's bias moves by whole pages within 2^28 pages, aligned
// to its largest p_align; the brk start is a page gap plus up to 1 GiB
// above the bss.
func TestRandomized(t *testing.T) {
	ld := loader64().Write(t, "ld.so")
	f := pie64(ld)
	for i := range f.Progs {
		if f.Progs[i].Type == elf.PT_LOAD {
			f.Progs[i].Align = 0x10000
		}
	}
	path := f.Write(t, "pie")
	seen := map[vm.Addr]bool{}
	for range 20 {
		epp := newPkg(t, path, space64())
		epp.Req.NoRandom = false
		if err := (Format{}).makeCmds(epp, fsOpener(t)); err != nil {
			t.Fatal(err)
		}
		bias := uint64(epp.ELF.Entry) - 0x1000
		if bias < 0x555555540000 || bias >= 0x555555550000+1<<40 || bias%0x10000 != 0 {
			t.Errorf("bias %#x out of range or not 64 KiB aligned", bias)
		}
		end := bias + 0x3e00 + 0x2400
		brk := uint64(epp.ELF.StartBrk)
		if brk < end+vm.PageSize || brk >= end+vm.PageSize+1<<30+vm.PageSize || brk%vm.PageSize != 0 {
			t.Errorf("brk %#x not in [%#x, +1 GiB)", brk, end+vm.PageSize)
		}
		seen[epp.ELF.Entry] = true
	}
	if len(seen) < 15 {
		t.Errorf("only %d distinct biases in 20 runs", len(seen))
	}
}
