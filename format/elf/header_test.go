package elf

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/internal/testelf"
)

func le16(off int, v uint16) func([]byte) {
	return func(b []byte) { binary.LittleEndian.PutUint16(b[off:], v) }
}

func TestParse(t *testing.T) {
	manyProgs := func(n int) []testelf.Prog {
		p := make([]testelf.Prog, n)
		for i := range p {
			p[i] = testelf.Prog{Type: elf.PT_NOTE}
		}
		return p
	}
	tests := []struct {
		name   string
		file   *testelf.File
		raw    []byte // instead of file
		want   error  // nil: parses
		reason string // in the error text
		nprogs int
	}{
		{name: "static exec", file: exec64(), nprogs: 3},
		{name: "pie", file: pie64("/lib/ld.so"), nprogs: 5},
		{name: "elf32", file: &testelf.File{Class: elf.ELFCLASS32, Progs: []testelf.Prog{{Type: elf.PT_LOAD}}}, nprogs: 1},
		{name: "elf32 EM_486", file: &testelf.File{Class: elf.ELFCLASS32, Machine: elf.EM_486, Progs: []testelf.Prog{{Type: elf.PT_LOAD}}}, nprogs: 1},
		{name: "garbage section headers", file: &testelf.File{GarbageSections: true, Progs: []testelf.Prog{{Type: elf.PT_LOAD}}}, nprogs: 1},
		{name: "bogus EI_CLASS EI_DATA EI_VERSION", file: &testelf.File{Progs: []testelf.Prog{{Type: elf.PT_LOAD}}, Patch: func(b []byte) {
			b[testelf.OffClass], b[testelf.OffData], b[testelf.OffVersion] = 0x77, 0x88, 0x99
		}}, nprogs: 1},
		{name: "1170 program headers", file: &testelf.File{Progs: manyProgs(1170)}, nprogs: 1170},
		{name: "1171 program headers", file: &testelf.File{Progs: manyProgs(1171)}, want: unix.ENOEXEC, reason: "program header table of 65576 bytes exceeds 65536"},
		{name: "empty", raw: []byte{}, want: unix.ENOEXEC, reason: "bad magic"},
		{name: "bad magic", raw: []byte("\x7fELG\x02\x01\x01"), want: unix.ENOEXEC, reason: "bad magic"},
		{name: "magic only", raw: []byte("\x7fELF"), want: unix.ENOEXEC, reason: "e_type"},
		{name: "ET_REL", file: &testelf.File{Type: elf.ET_REL}, want: unix.ENOEXEC, reason: "e_type ET_REL"},
		{name: "ET_CORE", file: &testelf.File{Type: elf.ET_CORE}, want: unix.ENOEXEC, reason: "e_type"},
		{name: "aarch64", file: &testelf.File{Machine: elf.EM_AARCH64}, want: unix.ENOEXEC, reason: "e_machine EM_AARCH64"},
		{name: "x32", file: &testelf.File{Class: elf.ELFCLASS32, Machine: elf.EM_X86_64, Progs: []testelf.Prog{{Type: elf.PT_LOAD}}}, want: unix.ENOEXEC, reason: "e_phentsize 0 is not 56"},
		{name: "elf64 layout with EM_386", file: &testelf.File{Machine: elf.EM_386, Progs: []testelf.Prog{{Type: elf.PT_LOAD}}}, want: unix.ENOEXEC, reason: "e_phentsize"},
		{name: "phentsize 0", file: &testelf.File{Progs: []testelf.Prog{{Type: elf.PT_LOAD}}, Patch: le16(testelf.Off64Phentsize, 0)}, want: unix.ENOEXEC, reason: "e_phentsize 0 is not 56"},
		{name: "phentsize 64", file: &testelf.File{Progs: []testelf.Prog{{Type: elf.PT_LOAD}}, Patch: le16(testelf.Off64Phentsize, 64)}, want: unix.ENOEXEC, reason: "e_phentsize"},
		{name: "phnum 0", file: &testelf.File{}, want: unix.ENOEXEC, reason: "no program headers"},
		{name: "phnum 0xffff", file: &testelf.File{Progs: []testelf.Prog{{Type: elf.PT_LOAD}}, Patch: le16(testelf.Off64Phnum, 0xffff)}, want: unix.ENOEXEC, reason: "exceeds 65536"},
		{name: "short phdr read", file: &testelf.File{Progs: []testelf.Prog{{Type: elf.PT_LOAD}}, Patch: le16(testelf.Off64Phnum, 3)}, want: unix.ENOEXEC, reason: "short read"},
		{name: "phoff beyond file", file: &testelf.File{Progs: []testelf.Prog{{Type: elf.PT_LOAD}}, Patch: func(b []byte) {
			binary.LittleEndian.PutUint64(b[testelf.Off64Phoff:], 1<<40)
		}}, want: unix.ENOEXEC, reason: "short read"},
		{name: "phoff 2^63", file: &testelf.File{Progs: []testelf.Prog{{Type: elf.PT_LOAD}}, Patch: func(b []byte) {
			binary.LittleEndian.PutUint64(b[testelf.Off64Phoff:], 1<<63)
		}}, want: unix.ENOEXEC, reason: "beyond any file"},
		{name: "elf32 phentsize 56", file: &testelf.File{Class: elf.ELFCLASS32, Progs: []testelf.Prog{{Type: elf.PT_LOAD}}, Patch: le16(testelf.Off32Phentsize, 56)}, want: unix.ENOEXEC, reason: "e_phentsize 56 is not 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.raw
			if tt.file != nil {
				b = tt.file.Bytes()
			}
			h, err := ParseHeader(b[:min(len(b), HeaderSize)])
			var progs []Prog
			if err == nil {
				progs, err = ReadProgs(bytes.NewReader(b), h)
			}
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if len(progs) != tt.nprogs {
					t.Errorf("got %d program headers, want %d", len(progs), tt.nprogs)
				}
				return
			}
			wantErrno(t, err, tt.want)
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q does not say %q", err, tt.reason)
			}
		})
	}
}

// Both layouts decode every field.
func TestParseFields(t *testing.T) {
	for _, class := range []elf.Class{elf.ELFCLASS64, elf.ELFCLASS32} {
		f := &testelf.File{Class: class, Type: elf.ET_DYN, Entry: 0x1234, Progs: []testelf.Prog{
			{Type: elf.PT_LOAD, Flags: elf.PF_R | elf.PF_X, Off: 0x1000, Vaddr: 0x2000, Paddr: 0x3000, Filesz: 0x10, Memsz: 0x20, Align: 0x1000},
		}}
		b := f.Bytes()
		h, err := ParseHeader(b)
		if err != nil {
			t.Fatal(err)
		}
		if h.Is32 != (class == elf.ELFCLASS32) || h.Entry != 0x1234 || h.Type != ET_DYN || h.Phnum != 1 {
			t.Errorf("%v: header %+v", class, h)
		}
		progs, err := ReadProgs(bytes.NewReader(b), h)
		if err != nil {
			t.Fatal(err)
		}
		want := Prog{Type: PT_LOAD, Flags: PF_R | PF_X, Off: 0x1000, Vaddr: 0x2000, Paddr: 0x3000, Filesz: 0x10, Memsz: 0x20, Align: 0x1000}
		if progs[0] != want {
			t.Errorf("%v: got %v, want %v", class, progs[0], want)
		}
	}
}
