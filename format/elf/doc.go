// Package elf is the ELF format handler of the exec switch: it recognises
// ELF64 (x86-64) and ELF32 (i386) executables and plans their loading as
// Linux 6.x fs/binfmt_elf.c load_elf_binary does, as vm commands in the
// exec package: the program's PT_LOAD segments, their bss, and the program
// interpreter named by PT_INTERP, loaded as a second image.
//
// The header and program header parser is our own (ParseHeader,
// ReadProgs); package debug/elf provides only types and constants. Its
// elf.NewFile rejects files that Linux runs, such as a damaged section
// header table, and accepts files Linux rejects.
//
// # Which checks, which errno
//
// Before the point of no return, every rejection is an ordinary errno, and
// errors.Is(err, errno) holds for the error returned (a *FormatError):
// ENOEXEC for a file that is not an ELF executable for this machine, EIO
// for a short read of PT_INTERP or of the interpreter's header, ELIBBAD for
// an interpreter that is not a usable ELF file, and the open errors of the
// interpreter (ENOENT, EACCES, ETXTBSY...).
//
// Linux discovers some defects only after it has discarded the caller's
// image (p_filesz > p_memsz, p_offset not congruent to p_vaddr modulo the
// page size, a segment below mmap_min_addr or beyond TASK_SIZE, an entry
// point beyond TASK_SIZE, an ET_DYN file without PT_LOAD, an interpreter
// that cannot be mapped). execve does not return then: the process dies of
// SIGSEGV. The planner reports these as a *FormatError wrapping ErrFatal,
// with the commands planned up to the failure left in the package, so that
// a backend can reproduce the kill and a plan can show it.
//
// # Security
//
// Everything in the file is untrusted. The parser never allocates more
// than 64 KiB for program headers (Linux's limit) and PATH_MAX for
// PT_INTERP, never panics on any input, and does all address and size
// arithmetic with overflow checks (vm.Addr.Add and the helpers here): a sum
// that overflows is rejected, except where Linux itself computes modulo
// 2^64 (the mm start/end fields), which is documented where it happens.
package elf
