// Package testelf builds small ELF64 and ELF32 executables in Go code for
// tests: an ELF header, a program header table, segment contents and, on
// request, a garbage section header table. Every field can be set, and Patch
// rewrites any bytes after layout, so that tests can build the broken files
// a loader must reject (or, as Linux does, accept).
//
// Files are always little-endian, as x86 is.
package testelf

import (
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// Header and program header sizes.
const (
	Ehdr64Size = 64
	Ehdr32Size = 52
	Phdr64Size = 56
	Phdr32Size = 32
)

// Offsets of ELF header fields that tests commonly patch. The identification
// bytes and e_type, e_machine and e_version sit at the same offsets in both
// classes.
const (
	OffClass   = 4  // EI_CLASS
	OffData    = 5  // EI_DATA
	OffVersion = 6  // EI_VERSION
	OffType    = 16 // e_type, 2 bytes
	OffMachine = 18 // e_machine, 2 bytes

	Off64Entry     = 24
	Off64Phoff     = 32
	Off64Shoff     = 40
	Off64Phentsize = 54
	Off64Phnum     = 56

	Off32Entry     = 24
	Off32Phoff     = 28
	Off32Shoff     = 32
	Off32Phentsize = 42
	Off32Phnum     = 44
)

// Prog is one program header and, optionally, the bytes written at Off.
type Prog struct {
	Type   elf.ProgType
	Flags  elf.ProgFlag
	Off    uint64
	Vaddr  uint64
	Paddr  uint64
	Filesz uint64
	Memsz  uint64
	Align  uint64
	// Data, when not nil, is written to the file at Off. Filesz is not
	// derived from it: set both.
	Data []byte
}

// Blob is bytes at a file offset.
type Blob struct {
	Off  uint64
	Data []byte
}

// File describes an ELF file. Zero fields take the defaults noted.
type File struct {
	Class   elf.Class   // default ELFCLASS64
	Type    elf.Type    // default ET_EXEC
	Machine elf.Machine // default EM_X86_64 for ELFCLASS64, EM_386 for ELFCLASS32
	Entry   uint64
	// Phoff is the program header table's offset; 0 places it right
	// after the ELF header.
	Phoff uint64
	Progs []Prog
	// Interp, when not empty, adds a PT_INTERP program header (before
	// Progs) naming it, NUL-terminated, stored after the program
	// header table.
	Interp string
	// GarbageSections writes a section header table of random-looking
	// bytes with absurd e_shoff/e_shnum/e_shstrndx values pointing at
	// it: Linux ignores section headers entirely.
	GarbageSections bool
	// Blobs are bytes written at file offsets that no program header
	// describes (code inside a PT_LOAD, for example).
	Blobs []Blob
	// Size, when larger than the laid-out file, pads it with zeros.
	Size int
	// Patch, when set, may change any byte of the finished file.
	Patch func(b []byte)
}

func (f *File) is32() bool { return f.Class == elf.ELFCLASS32 }

// InterpOffset returns where Bytes stores the Interp string.
func (f *File) InterpOffset() uint64 {
	n := len(f.Progs)
	if f.Interp != "" {
		n++
	}
	return f.phoff() + uint64(n*f.phentsize())
}

func (f *File) phentsize() int {
	if f.is32() {
		return Phdr32Size
	}
	return Phdr64Size
}

func (f *File) phoff() uint64 {
	if f.Phoff != 0 {
		return f.Phoff
	}
	if f.is32() {
		return Ehdr32Size
	}
	return Ehdr64Size
}

// Bytes lays the file out.
func (f *File) Bytes() []byte {
	le := binary.LittleEndian
	progs := f.Progs
	if f.Interp != "" {
		s := append([]byte(f.Interp), 0)
		progs = append([]Prog{{
			Type: elf.PT_INTERP, Flags: elf.PF_R, Off: f.InterpOffset(),
			Vaddr: f.InterpOffset(), Filesz: uint64(len(s)), Memsz: uint64(len(s)),
			Align: 1, Data: s,
		}}, progs...)
	}
	phoff := f.phoff()
	size := int(phoff) + len(progs)*f.phentsize()
	for _, p := range progs {
		if p.Data != nil {
			size = max(size, int(p.Off)+len(p.Data))
		}
	}
	for _, bl := range f.Blobs {
		size = max(size, int(bl.Off)+len(bl.Data))
	}
	var shoff int
	if f.GarbageSections {
		shoff = (size + 7) &^ 7
		size = shoff + 5*64
	}
	size = max(size, f.Size)
	b := make([]byte, size)

	class, machine := f.Class, f.Machine
	if class == elf.ELFCLASSNONE {
		class = elf.ELFCLASS64
	}
	if machine == elf.EM_NONE {
		machine = elf.EM_X86_64
		if f.is32() {
			machine = elf.EM_386
		}
	}
	typ := f.Type
	if typ == elf.ET_NONE {
		typ = elf.ET_EXEC
	}
	copy(b, elf.ELFMAG)
	b[OffClass] = byte(class)
	b[OffData] = byte(elf.ELFDATA2LSB)
	b[OffVersion] = byte(elf.EV_CURRENT)
	le.PutUint16(b[OffType:], uint16(typ))
	le.PutUint16(b[OffMachine:], uint16(machine))
	le.PutUint32(b[20:], uint32(elf.EV_CURRENT))
	if f.is32() {
		le.PutUint32(b[Off32Entry:], uint32(f.Entry))
		le.PutUint32(b[Off32Phoff:], uint32(phoff))
		le.PutUint16(b[40:], Ehdr32Size)
		le.PutUint16(b[Off32Phentsize:], Phdr32Size)
		le.PutUint16(b[Off32Phnum:], uint16(len(progs)))
		le.PutUint16(b[46:], 40)
		if f.GarbageSections {
			le.PutUint32(b[Off32Shoff:], uint32(shoff))
			le.PutUint16(b[48:], 0xfff0)
			le.PutUint16(b[50:], 0xfffe)
		}
	} else {
		le.PutUint64(b[Off64Entry:], f.Entry)
		le.PutUint64(b[Off64Phoff:], phoff)
		le.PutUint16(b[52:], Ehdr64Size)
		le.PutUint16(b[Off64Phentsize:], Phdr64Size)
		le.PutUint16(b[Off64Phnum:], uint16(len(progs)))
		le.PutUint16(b[58:], 64)
		if f.GarbageSections {
			le.PutUint64(b[Off64Shoff:], uint64(shoff))
			le.PutUint16(b[60:], 0xfff0)
			le.PutUint16(b[62:], 0xfffe)
		}
	}
	for i, p := range progs {
		o := int(phoff) + i*f.phentsize()
		if f.is32() {
			le.PutUint32(b[o:], uint32(p.Type))
			le.PutUint32(b[o+4:], uint32(p.Off))
			le.PutUint32(b[o+8:], uint32(p.Vaddr))
			le.PutUint32(b[o+12:], uint32(p.Paddr))
			le.PutUint32(b[o+16:], uint32(p.Filesz))
			le.PutUint32(b[o+20:], uint32(p.Memsz))
			le.PutUint32(b[o+24:], uint32(p.Flags))
			le.PutUint32(b[o+28:], uint32(p.Align))
		} else {
			le.PutUint32(b[o:], uint32(p.Type))
			le.PutUint32(b[o+4:], uint32(p.Flags))
			le.PutUint64(b[o+8:], p.Off)
			le.PutUint64(b[o+16:], p.Vaddr)
			le.PutUint64(b[o+24:], p.Paddr)
			le.PutUint64(b[o+32:], p.Filesz)
			le.PutUint64(b[o+40:], p.Memsz)
			le.PutUint64(b[o+48:], p.Align)
		}
	}
	for _, p := range progs {
		if p.Data != nil {
			copy(b[p.Off:], p.Data)
		}
	}
	for _, bl := range f.Blobs {
		copy(b[bl.Off:], bl.Data)
	}
	if f.GarbageSections {
		for i := shoff; i < shoff+5*64; i++ {
			b[i] = byte(i*131 + 7)
		}
	}
	if f.Patch != nil {
		f.Patch(b)
	}
	return b
}

// Write stores f as an executable file (mode 0755) named name in a
// temporary directory of t and returns its path.
func (f *File) Write(t testing.TB, name string) string {
	t.Helper()
	return WriteBytes(t, name, f.Bytes())
}

// WriteBytes stores b as an executable file (mode 0755) named name in a
// temporary directory of t and returns its path.
func WriteBytes(t testing.TB, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// PauseCode is x86-64 (and i386) machine code that calls pause(2) forever:
// a program that stays alive until killed, so that a test can read its
// /proc/PID/maps. For x86-64: mov eax, 34; syscall; jmp back.
var PauseCode = []byte{0xb8, 0x22, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xeb, 0xf7}

// Static64 returns a minimal static ET_EXEC x86-64 program at 0x400000
// whose entry runs PauseCode: one R+X PT_LOAD holding the headers and code,
// and one RW PT_LOAD with a bss.
func Static64() *File {
	const base = 0x400000
	code := uint64(0x200)
	return &File{
		Type:  elf.ET_EXEC,
		Entry: base + code,
		Progs: []Prog{
			{Type: elf.PT_LOAD, Flags: elf.PF_R | elf.PF_X, Off: 0, Vaddr: base, Filesz: 0x300, Memsz: 0x300, Align: 0x1000},
			{Type: elf.PT_LOAD, Flags: elf.PF_R | elf.PF_W, Off: 0x1000, Vaddr: base + 0x1000, Filesz: 0x10, Memsz: 0x3000, Align: 0x1000, Data: make([]byte, 0x10)},
			{Type: elf.PT_GNU_STACK, Flags: elf.PF_R | elf.PF_W},
		},
		Blobs: []Blob{{Off: code, Data: PauseCode}},
	}
}

// PIE64 returns an x86-64 PIE at 0 (with interp as PT_INTERP; without
// one, a static-pie or loader) whose entry runs PauseCode: a read-only, a
// text and a data+bss PT_LOAD, the last at a page offset other than its
// file offset's.
func PIE64(interp string) *File {
	return &File{
		Type:   elf.ET_DYN,
		Entry:  0x1000,
		Interp: interp,
		Progs: []Prog{
			{Type: elf.PT_LOAD, Flags: elf.PF_R, Off: 0, Vaddr: 0, Filesz: 0x400, Memsz: 0x400, Align: 0x1000},
			{Type: elf.PT_LOAD, Flags: elf.PF_R | elf.PF_X, Off: 0x1000, Vaddr: 0x1000, Filesz: 0x100, Memsz: 0x100, Align: 0x1000},
			{Type: elf.PT_LOAD, Flags: elf.PF_R | elf.PF_W, Off: 0x2e00, Vaddr: 0x3e00, Filesz: 0x300, Memsz: 0x2400, Align: 0x1000},
			{Type: elf.PT_GNU_STACK, Flags: elf.PF_R | elf.PF_W},
		},
		Blobs: []Blob{{Off: 0x1000, Data: PauseCode}, {Off: 0x3100, Data: []byte{1}}},
	}
}
