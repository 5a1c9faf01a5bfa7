package elf

import "strconv"

// The ELF types and constants the loader reads (include/uapi/linux/elf.h).
// They are ours rather than debug/elf's: importing debug/elf links
// compress/flate, internal/zstd and debug/dwarf into every uexec, whose
// initialisation costs each run ~30 µs before main (GODEBUG=inittrace=1).

// Type is e_type.
type Type uint16

// Machine is e_machine.
type Machine uint16

// ProgType is p_type.
type ProgType uint32

// ProgFlag is p_flags.
type ProgFlag uint32

const (
	ET_NONE Type = 0
	ET_REL  Type = 1
	ET_EXEC Type = 2
	ET_DYN  Type = 3
	ET_CORE Type = 4

	EM_386    Machine = 3
	EM_486    Machine = 6 // Linux's compat loader takes it as EM_386
	EM_X86_64 Machine = 62

	PT_NULL         ProgType = 0
	PT_LOAD         ProgType = 1
	PT_DYNAMIC      ProgType = 2
	PT_INTERP       ProgType = 3
	PT_NOTE         ProgType = 4
	PT_SHLIB        ProgType = 5
	PT_PHDR         ProgType = 6
	PT_TLS          ProgType = 7
	PT_GNU_EH_FRAME ProgType = 0x6474e550
	PT_GNU_STACK    ProgType = 0x6474e551
	PT_GNU_RELRO    ProgType = 0x6474e552
	PT_GNU_PROPERTY ProgType = 0x6474e553

	PF_X ProgFlag = 1
	PF_W ProgFlag = 2
	PF_R ProgFlag = 4

	// ELFMAG is the magic at the start of e_ident.
	ELFMAG = "\x7fELF"
	// EI_NIDENT is the size of e_ident.
	EI_NIDENT = 16
)

// The names are arrays and switches, not maps: static data, nothing to
// build at init.

var typeNames = [...]string{ET_NONE: "ET_NONE", ET_REL: "ET_REL", ET_EXEC: "ET_EXEC", ET_DYN: "ET_DYN", ET_CORE: "ET_CORE"}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return name("", uint64(t))
}

// String names the machines a program meant for another may carry (what a
// binfmt rule or an error names).
func (m Machine) String() string {
	n := ""
	switch m {
	case 0:
		n = "EM_NONE"
	case 2:
		n = "EM_SPARC"
	case EM_386:
		n = "EM_386"
	case 4:
		n = "EM_68K"
	case 8:
		n = "EM_MIPS"
	case 15:
		n = "EM_PARISC"
	case EM_486:
		n = "EM_486"
	case 20:
		n = "EM_PPC"
	case 21:
		n = "EM_PPC64"
	case 22:
		n = "EM_S390"
	case 40:
		n = "EM_ARM"
	case 42:
		n = "EM_SH"
	case 43:
		n = "EM_SPARCV9"
	case 50:
		n = "EM_IA_64"
	case EM_X86_64:
		n = "EM_X86_64"
	case 183:
		n = "EM_AARCH64"
	case 243:
		n = "EM_RISCV"
	case 258:
		n = "EM_LOONGARCH"
	case 0x9026:
		n = "EM_ALPHA"
	}
	return name(n, uint64(m))
}

var progNames = [...]string{PT_NULL: "PT_NULL", PT_LOAD: "PT_LOAD", PT_DYNAMIC: "PT_DYNAMIC", PT_INTERP: "PT_INTERP",
	PT_NOTE: "PT_NOTE", PT_SHLIB: "PT_SHLIB", PT_PHDR: "PT_PHDR", PT_TLS: "PT_TLS"}

func (t ProgType) String() string {
	if int(t) < len(progNames) {
		return progNames[t]
	}
	n := ""
	switch t {
	case PT_GNU_EH_FRAME:
		n = "PT_GNU_EH_FRAME"
	case PT_GNU_STACK:
		n = "PT_GNU_STACK"
	case PT_GNU_RELRO:
		n = "PT_GNU_RELRO"
	case PT_GNU_PROPERTY:
		n = "PT_GNU_PROPERTY"
	}
	return name(n, uint64(t))
}

// String names the flags set, "PF_X+PF_W+PF_R" (debug/elf's form), with any
// other bits in hex.
func (f ProgFlag) String() string {
	s := ""
	for _, b := range [...]struct {
		f ProgFlag
		n string
	}{{PF_X, "PF_X"}, {PF_W, "PF_W"}, {PF_R, "PF_R"}} {
		if f&b.f != 0 {
			s += "+" + b.n
			f &^= b.f
		}
	}
	if f != 0 || s == "" {
		s += "+0x" + strconv.FormatUint(uint64(f), 16)
	}
	return s[1:]
}

// name is n, or v in hex where n is "".
func name(n string, v uint64) string {
	if n != "" {
		return n
	}
	return "0x" + strconv.FormatUint(v, 16)
}
