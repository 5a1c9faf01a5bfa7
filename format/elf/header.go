package elf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"golang.org/x/sys/unix"
)

// Sizes of the ELF structures Linux reads.
const (
	// HeaderSize is how many bytes of a file ParseHeader looks at: an
	// Elf64_Ehdr, the larger of the two headers.
	HeaderSize = 64
	ehdr32Size = 52
	phdr64Size = 56
	phdr32Size = 32

	// MaxPhdrTable is the largest program header table Linux reads
	// (fs/binfmt_elf.c load_elf_phdrs: size > 65536 -> fail).
	MaxPhdrTable = 65536
	// PathMax is PATH_MAX: the longest PT_INTERP Linux accepts.
	PathMax = 4096
)

// Header is an ELF file header, either class, widened to 64 bits.
type Header struct {
	// Is32 reports the ELF32 layout. Linux's two handlers pick the
	// layout by e_machine (native EM_X86_64 or compat EM_386/EM_486),
	// never by EI_CLASS; so do we.
	Is32 bool
	// Ident is e_ident as read; EI_CLASS, EI_DATA, EI_VERSION and
	// EI_OSABI are not checked, as Linux does not check them.
	Ident     [EI_NIDENT]byte
	Type      Type
	Machine   Machine
	Version   uint32
	Entry     uint64
	Phoff     uint64
	Shoff     uint64
	Flags     uint32
	Ehsize    uint16
	Phentsize uint16
	Phnum     uint16
	Shentsize uint16
	Shnum     uint16
	Shstrndx  uint16
}

// PhdrSize returns sizeof(struct elf_phdr) for h's layout: 56 or 32.
func (h *Header) PhdrSize() int {
	if h.Is32 {
		return phdr32Size
	}
	return phdr64Size
}

// EhdrSize returns sizeof(struct elfhdr) for h's layout: 64 or 52.
func (h *Header) EhdrSize() int {
	if h.Is32 {
		return ehdr32Size
	}
	return HeaderSize
}

// Prog is a program header, either class, widened to 64 bits.
type Prog struct {
	Type   ProgType
	Flags  ProgFlag
	Off    uint64
	Vaddr  uint64
	Paddr  uint64
	Filesz uint64
	Memsz  uint64
	Align  uint64
}

func (p Prog) String() string {
	return fmt.Sprintf("%v off=%#x vaddr=%#x filesz=%#x memsz=%#x flags=%v align=%#x",
		p.Type, p.Off, p.Vaddr, p.Filesz, p.Memsz, p.Flags, p.Align)
}

// ParseHeader parses an ELF header from the first bytes of a file, as
// load_elf_binary checks it: the magic, e_type (ET_EXEC or ET_DYN) and
// e_machine (EM_X86_64 for the ELF64 layout, EM_386 or EM_486 for ELF32).
// b may be shorter than HeaderSize: Linux reads the header into a zeroed
// buffer, so the missing bytes count as zeros. Errors wrap unix.ENOEXEC.
//
// The program header fields (e_phentsize, e_phnum) are checked by
// ReadProgs, as Linux checks them in load_elf_phdrs.
func ParseHeader(b []byte) (*Header, error) {
	var buf [HeaderSize]byte
	copy(buf[:], b)
	if !bytes.Equal(buf[:4], []byte(ELFMAG)) {
		return nil, errorf(unix.ENOEXEC, "bad magic")
	}
	le := binary.LittleEndian
	h := &Header{
		Type:    Type(le.Uint16(buf[16:])),
		Machine: Machine(le.Uint16(buf[18:])),
		Version: le.Uint32(buf[20:]),
	}
	copy(h.Ident[:], buf[:])
	if h.Type != ET_EXEC && h.Type != ET_DYN {
		return nil, errorf(unix.ENOEXEC, fmt.Sprintf("e_type %v is not ET_EXEC or ET_DYN", h.Type))
	}
	switch h.Machine {
	case EM_X86_64:
		h.Entry = le.Uint64(buf[24:])
		h.Phoff = le.Uint64(buf[32:])
		h.Shoff = le.Uint64(buf[40:])
		h.Flags = le.Uint32(buf[48:])
		h.Ehsize = le.Uint16(buf[52:])
		h.Phentsize = le.Uint16(buf[54:])
		h.Phnum = le.Uint16(buf[56:])
		h.Shentsize = le.Uint16(buf[58:])
		h.Shnum = le.Uint16(buf[60:])
		h.Shstrndx = le.Uint16(buf[62:])
	case EM_386, EM_486:
		h.Is32 = true
		h.Entry = uint64(le.Uint32(buf[24:]))
		h.Phoff = uint64(le.Uint32(buf[28:]))
		h.Shoff = uint64(le.Uint32(buf[32:]))
		h.Flags = le.Uint32(buf[36:])
		h.Ehsize = le.Uint16(buf[40:])
		h.Phentsize = le.Uint16(buf[42:])
		h.Phnum = le.Uint16(buf[44:])
		h.Shentsize = le.Uint16(buf[46:])
		h.Shnum = le.Uint16(buf[48:])
		h.Shstrndx = le.Uint16(buf[50:])
	default:
		return nil, errorf(unix.ENOEXEC, fmt.Sprintf("e_machine %v is not EM_X86_64, EM_386 or EM_486", h.Machine))
	}
	return h, nil
}

// ReadProgs reads and parses h's program header table from r, with the
// checks of Linux's load_elf_phdrs: e_phentsize must be the size of a
// program header of h's layout, the table must be 1 to 65536 bytes, and it
// must be read in full. Errors wrap unix.ENOEXEC.
func ReadProgs(r io.ReaderAt, h *Header) ([]Prog, error) {
	size := h.PhdrSize()
	if int(h.Phentsize) != size {
		return nil, errorf(unix.ENOEXEC, fmt.Sprintf("e_phentsize %d is not %d", h.Phentsize, size))
	}
	n := int(h.Phnum) * size // at most 65535*56: no overflow
	if n == 0 {
		return nil, errorf(unix.ENOEXEC, "no program headers")
	}
	if n > MaxPhdrTable {
		return nil, errorf(unix.ENOEXEC, fmt.Sprintf("program header table of %d bytes exceeds %d", n, MaxPhdrTable))
	}
	if h.Phoff > math.MaxInt64-uint64(n) {
		return nil, errorf(unix.ENOEXEC, fmt.Sprintf("program header table at offset %#x is beyond any file", h.Phoff))
	}
	buf := make([]byte, n)
	if got, err := r.ReadAt(buf, int64(h.Phoff)); got < n {
		reason := fmt.Sprintf("short read of program header table: %d of %d bytes at offset %#x", got, n, h.Phoff)
		if err != nil && err != io.EOF {
			reason += " (" + err.Error() + ")"
		}
		return nil, errorf(unix.ENOEXEC, reason)
	}
	return parseProgs(buf, h), nil
}

// parseProgs decodes a program header table read in full.
func parseProgs(buf []byte, h *Header) []Prog {
	le := binary.LittleEndian
	size := h.PhdrSize()
	progs := make([]Prog, len(buf)/size)
	for i := range progs {
		b := buf[i*size : (i+1)*size]
		if h.Is32 {
			progs[i] = Prog{
				Type:   ProgType(le.Uint32(b[0:])),
				Off:    uint64(le.Uint32(b[4:])),
				Vaddr:  uint64(le.Uint32(b[8:])),
				Paddr:  uint64(le.Uint32(b[12:])),
				Filesz: uint64(le.Uint32(b[16:])),
				Memsz:  uint64(le.Uint32(b[20:])),
				Flags:  ProgFlag(le.Uint32(b[24:])),
				Align:  uint64(le.Uint32(b[28:])),
			}
		} else {
			progs[i] = Prog{
				Type:   ProgType(le.Uint32(b[0:])),
				Flags:  ProgFlag(le.Uint32(b[4:])),
				Off:    le.Uint64(b[8:]),
				Vaddr:  le.Uint64(b[16:]),
				Paddr:  le.Uint64(b[24:]),
				Filesz: le.Uint64(b[32:]),
				Memsz:  le.Uint64(b[40:]),
				Align:  le.Uint64(b[48:]),
			}
		}
	}
	return progs
}
