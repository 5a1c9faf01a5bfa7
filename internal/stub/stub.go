// Package stub generates the stub: a freestanding x86-64 ELF executable of a
// few hundred bytes (no libc, no Go runtime, no SSE) whose only job is to
// give a tracer a fresh address space that the kernel's exec has already
// flushed (other threads, caught handlers, CLOEXEC fds, rseq, fs/gs, FPU),
// and then to hold still.
//
// The stub is linked at Base, an address no program uses, so that it does
// not collide with the image built in its place. Its code stops itself with
// SIGSTOP (a tracer that started it with PTRACE_TRACEME sees the exec's
// SIGTRAP before even that; a tree tracer seizes it in that stop) and, when
// continued untouched, exits with status 127, so that a stub run by
// mistake never lingers. The `syscall`
// instruction at SyscallAddr is the one a tracer may use to inject system
// calls while the stub's page is still mapped.
//
// The bytes are assembled here by hand, one commented instruction at a
// time, so that the binary the backend executes has its source next to it;
// TestListing checks the encoding against objdump when it is installed.
package stub

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// Base is the stub's link address: the address of its ELF header in memory.
// 1 TiB + 4 KiB: above every ET_EXEC base in use and far below the mmap
// area, the PIE base (ELF_ET_DYN_BASE) and the stack.
const Base = 0x100_0000_1000

// ELF64 constants (include/uapi/linux/elf.h).
const (
	ehdrSize      = 64
	phdrSize      = 56
	phnum         = 2
	ptLoad        = 1
	ptGNUStack    = 0x6474e551
	pfX, pfW, pfR = 1, 2, 4
)

// CodeOffset is the file offset (and the offset from Base) of the first
// instruction.
const CodeOffset = ehdrSize + phnum*phdrSize

// Linux x86-64 system call numbers (arch/x86/entry/syscalls/syscall_64.tbl).
const (
	sysGetpid    = 39
	sysKill      = 62
	sysExitGroup = 231
	sigstop      = 19
)

type insn struct {
	code []byte
	asm  string
	// site marks the syscall instruction tracers use.
	site bool
}

func movEAX(imm uint32) []byte { return le32(0xb8, imm) } // B8+rd id: mov r32, imm32 (eax)
func movEDI(imm uint32) []byte { return le32(0xbf, imm) } // B8+7 id (edi)
func movESI(imm uint32) []byte { return le32(0xbe, imm) } // B8+6 id (esi)

func le32(op byte, v uint32) []byte {
	return binary.LittleEndian.AppendUint32([]byte{op}, v)
}

// program is the stub's code. Writing 32-bit registers zero-extends into
// the 64-bit ones, so "mov eax, imm" sets all of rax.
var program = []insn{
	{movEAX(sysGetpid), "mov    eax, 39          ; getpid()", false},
	{[]byte{0x0f, 0x05}, "syscall", false},
	{[]byte{0x89, 0xc7}, "mov    edi, eax         ; pid", false}, // 89 /r: mov r/m32, r32 (modrm 11 000 111)
	{movESI(sigstop), "mov    esi, 19          ; SIGSTOP", false},
	{movEAX(sysKill), "mov    eax, 62          ; kill(pid, SIGSTOP)", false},
	{[]byte{0x0f, 0x05}, "syscall                 ; the tracer's injection site", true},
	{movEDI(127), "mov    edi, 127", false},
	{movEAX(sysExitGroup), "mov    eax, 231         ; exit_group(127)", false},
	{[]byte{0x0f, 0x05}, "syscall", false},
	{[]byte{0x0f, 0x0b}, "ud2                     ; not reached", false},
}

// layout returns the code bytes and the offset of the injection site within
// them.
func layout() (code []byte, site int) {
	site = -1
	for _, in := range program {
		if in.site {
			site = len(code)
		}
		code = append(code, in.code...)
	}
	return code, site
}

// SyscallAddr is the address of the stub's injection `syscall` instruction
// while the stub is mapped.
var SyscallAddr uint64

// Entry is the stub's entry point (e_entry).
const Entry = Base + CodeOffset

var image []byte

func init() {
	code, site := layout()
	SyscallAddr = Entry + uint64(site)
	image = build(code)
}

func build(code []byte) []byte {
	size := uint64(CodeOffset + len(code))
	le := binary.LittleEndian
	b := make([]byte, 0, size)
	// e_ident: magic, ELFCLASS64, ELFDATA2LSB, EV_CURRENT, ELFOSABI_NONE.
	b = append(b, 0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	b = le.AppendUint16(b, 2)        // e_type: ET_EXEC
	b = le.AppendUint16(b, 62)       // e_machine: EM_X86_64
	b = le.AppendUint32(b, 1)        // e_version
	b = le.AppendUint64(b, Entry)    // e_entry
	b = le.AppendUint64(b, ehdrSize) // e_phoff: right after this header
	b = le.AppendUint64(b, 0)        // e_shoff: no section headers
	b = le.AppendUint32(b, 0)        // e_flags
	b = le.AppendUint16(b, ehdrSize) // e_ehsize
	b = le.AppendUint16(b, phdrSize) // e_phentsize
	b = le.AppendUint16(b, phnum)    // e_phnum
	b = le.AppendUint16(b, 0)        // e_shentsize
	b = le.AppendUint16(b, 0)        // e_shnum
	b = le.AppendUint16(b, 0)        // e_shstrndx
	phdr := func(typ, flags uint32, off, vaddr, filesz, memsz, align uint64) {
		b = le.AppendUint32(b, typ)
		b = le.AppendUint32(b, flags)
		b = le.AppendUint64(b, off)
		b = le.AppendUint64(b, vaddr) // p_vaddr
		b = le.AppendUint64(b, vaddr) // p_paddr
		b = le.AppendUint64(b, filesz)
		b = le.AppendUint64(b, memsz)
		b = le.AppendUint64(b, align)
	}
	// One read+execute segment: the whole file, headers included.
	phdr(ptLoad, pfR|pfX, 0, Base, size, size, 0x1000)
	// A non-executable stack, as the program's own PT_GNU_STACK usually
	// asks; the backend reuses this stack mapping for the program.
	phdr(ptGNUStack, pfR|pfW, 0, 0, 0, 0, 16)
	return append(b, code...)
}

// ELF returns a copy of the stub executable's bytes.
func ELF() []byte { return append([]byte(nil), image...) }

// Listing returns the stub's code as an annotated assembly listing.
func Listing() string {
	var sb strings.Builder
	addr := uint64(Entry)
	for _, in := range program {
		fmt.Fprintf(&sb, "%#x: % -16x %s\n", addr, in.code, in.asm)
		addr += uint64(len(in.code))
	}
	return sb.String()
}
