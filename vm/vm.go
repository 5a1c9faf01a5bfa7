package vm

import (
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
)

// PageSize is the x86-64 page size (Linux ELF_MIN_ALIGN).
const PageSize = 4096

// Addr is a user virtual address.
type Addr uint64

// Add returns a+n and whether the sum did not overflow.
func (a Addr) Add(n uint64) (Addr, bool) {
	s := uint64(a) + n
	return Addr(s), s >= uint64(a)
}

// PageOffset returns the offset of a within its page (Linux ELF_PAGEOFFSET).
func (a Addr) PageOffset() uint64 { return uint64(a) & (PageSize - 1) }

// RoundDown returns the start of the page holding a (Linux ELF_PAGESTART).
func (a Addr) RoundDown() Addr { return a &^ (PageSize - 1) }

// RoundUp returns a rounded up to a page boundary and whether that did not
// overflow (Linux ELF_PAGEALIGN).
func (a Addr) RoundUp() (Addr, bool) {
	if uint64(a) > math.MaxUint64-(PageSize-1) {
		return 0, false
	}
	return (a + PageSize - 1).RoundDown(), true
}

func (a Addr) String() string { return fmt.Sprintf("%#x", uint64(a)) }

// Range is the half-open address range [Start, End).
type Range struct {
	Start, End Addr
}

// Len returns the length of r.
func (r Range) Len() uint64 { return uint64(r.End - r.Start) }

// Compare orders ranges by start address, for slices.SortFunc.
func (r Range) Compare(o Range) int {
	switch {
	case r.Start < o.Start:
		return -1
	case r.Start > o.Start:
		return 1
	}
	return 0
}

// Overlaps reports whether r and o share an address.
func (r Range) Overlaps(o Range) bool { return r.Start < o.End && o.Start < r.End }

// Prot is a page protection; the bits equal Linux's PROT_READ, PROT_WRITE and
// PROT_EXEC.
type Prot uint8

const (
	ProtRead  Prot = 1 << 0
	ProtWrite Prot = 1 << 1
	ProtExec  Prot = 1 << 2
)

// String renders p as /proc/PID/maps does, without the sharing column: "r-x".
func (p Prot) String() string {
	b := []byte("---")
	if p&ProtRead != 0 {
		b[0] = 'r'
	}
	if p&ProtWrite != 0 {
		b[1] = 'w'
	}
	if p&ProtExec != 0 {
		b[2] = 'x'
	}
	return string(b)
}

// Op is what a vm command does.
type Op uint8

const (
	// OpMap maps file pages privately (the seed's vmcmd_map_pagedvn).
	OpMap Op = iota + 1
	// OpRead reads file bytes into anonymous memory (vmcmd_map_readvn).
	OpRead
	// OpZero maps anonymous zero-filled pages (vmcmd_map_zero).
	OpZero
	// OpReserve maps an anonymous PROT_NONE span that later commands map
	// over (Linux maps total_mapping_size first so that the image is
	// contiguous).
	OpReserve
	// OpUnmap removes pages: holes left in a reserved span.
	OpUnmap
	// OpClear zeroes bytes inside an existing mapping: the tail of the last
	// file page of a segment whose memory is longer than its file part
	// (Linux padzero).
	OpClear
)

var opNames = [...]string{OpMap: "map", OpRead: "read", OpZero: "zero", OpReserve: "reserve", OpUnmap: "unmap", OpClear: "clear"}

func (o Op) String() string {
	if int(o) < len(opNames) && opNames[o] != "" {
		return opNames[o]
	}
	return fmt.Sprintf("Op(%d)", uint8(o))
}

// ParseOp is the inverse of Op.String.
func ParseOp(s string) (Op, bool) {
	for i, n := range opNames {
		if n != "" && n == s {
			return Op(i), true
		}
	}
	return 0, false
}

// Flag modifies a vm command, as the seed's VMCMD_* flags do.
type Flag uint8

const (
	// FlagBase starts an image that may be placed elsewhere as a whole
	// (VMCMD_BASE): the backend may choose its address.
	FlagBase Flag = 1 << iota
	// FlagRelative moves with the last FlagBase command (VMCMD_RELATIVE).
	FlagRelative
	// FlagFixed must land exactly at Addr (MAP_FIXED semantics);
	// without it and without FlagRelative the address is a hint.
	FlagFixed
	// FlagStack marks the stack mapping (VMCMD_STACK).
	FlagStack
)

// String renders f as "base|fixed"; empty for no flags.
func (f Flag) String() string {
	var s []string
	for _, x := range []struct {
		f Flag
		n string
	}{{FlagBase, "base"}, {FlagRelative, "relative"}, {FlagFixed, "fixed"}, {FlagStack, "stack"}} {
		if f&x.f != 0 {
			s = append(s, x.n)
		}
	}
	return strings.Join(s, "|")
}

// File is an opened file that vm commands map or read.
type File struct {
	// Path is the file's name: as the exec resolved it (symlinks
	// followed; what /proc/PID/maps shows for its mappings) once Name has
	// resolved it, else the name it was opened by. Read it through Name.
	Path string
	// R reads the file's contents. For a host file it is the descriptor
	// that the exec opened, so that the image is built from the file that
	// was checked, not from whatever the path names later.
	R io.ReaderAt
	// Size is the file's size in bytes when it was opened.
	Size int64
	// Dev and Ino identify the file (what /proc/PID/maps prints).
	Dev, Ino uint64
	// Opened is the file's version when the exec opened it (zero: not
	// known): what a cache of what the file holds is keyed by.
	Opened Pin
	// Pin, when a policy set it (veriexec), is the version of the file
	// whose contents the policy read: a backend maps the file only while
	// it is still that version, and otherwise ends the image past the
	// point of no return, so that no other bytes run.
	Pin *Pin

	once sync.Once
}

// Pin is a version of a file: its size and change times (seconds and
// nanoseconds) when a policy read it. A write to the file changes ctime,
// which no one can set back (utimensat sets it to now).
type Pin struct {
	Size         int64
	Mtime, Ctime [2]int64
}

// Namer is implemented by a File's reader when the file's resolved name
// costs a lookup that only displays need: Name asks it the first time.
type Namer interface {
	ResolvedName() string
}

// Name returns the file's resolved name.
func (f *File) Name() string {
	f.once.Do(func() {
		if n, ok := f.R.(Namer); ok {
			if name := n.ResolvedName(); name != "" {
				f.Path = name
			}
		}
	})
	return f.Path
}

// Cmd is one vm command (the seed's struct exec_vmcmd).
type Cmd struct {
	Op     Op
	Addr   Addr   // absolute address chosen by the planner
	Len    uint64 // bytes; OpMap, OpZero, OpReserve and OpUnmap cover whole pages
	Prot   Prot
	Offset uint64 // file offset for OpMap and OpRead
	File   *File  // nil for anonymous commands
	Flags  Flag
}

// End returns the first address after the command and whether that did not
// overflow.
func (c Cmd) End() (Addr, bool) { return c.Addr.Add(c.Len) }

func (c Cmd) String() string {
	s := fmt.Sprintf("%-7s %#x-%#x %s", c.Op, uint64(c.Addr), uint64(c.Addr)+c.Len, c.Prot)
	if c.File != nil {
		s += fmt.Sprintf(" %s@%#x", c.File.Name(), c.Offset)
	}
	if c.Flags != 0 {
		s += " [" + c.Flags.String() + "]"
	}
	return s
}

// AddressSpace is what a backend offers to build an image: an in-memory
// simulation (package vm/sim) or a real process (package backend/linux).
// BrkMapper is an AddressSpace that maps a bss as vm_brk_flags does: at
// exactly the address, joined to the mapping below it but never to the one
// above (do_brk_flags only expands the previous vma). A bss made right
// below another mapping then stays a mapping of its own, which
// /proc/PID/maps shows. OpZero uses it where the space has it.
type BrkMapper interface {
	MapBrk(addr Addr, len uint64, prot Prot) (Addr, error)
}

// Addresses and lengths of Map, MapAnon, Unmap and Protect are page aligned.
type AddressSpace interface {
	// MapFile maps len bytes of f from offset off privately at addr. With
	// fixed, the mapping must land at addr and replaces what is there;
	// otherwise addr is a hint and the space chooses. It returns where the
	// mapping landed.
	MapFile(addr Addr, len uint64, prot Prot, f *File, off uint64, fixed bool) (Addr, error)
	// MapAnon maps anonymous zero-filled memory, with the same placement
	// rules as MapFile.
	MapAnon(addr Addr, len uint64, prot Prot, fixed bool) (Addr, error)
	// Unmap removes the pages of [addr, addr+len).
	Unmap(addr Addr, len uint64) error
	// Protect changes the protection of [addr, addr+len).
	Protect(addr Addr, len uint64, prot Prot) error
	// Write stores b at addr, whatever the protection of the pages (as the
	// kernel's own writes during exec do).
	Write(addr Addr, b []byte) error
}
