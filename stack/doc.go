// Package stack collects a new image's arguments and environment under
// Linux's limits and lays out its initial stack byte for byte: strings,
// AT_PLATFORM and AT_RANDOM bytes, the aux vector in the kernel's order, the
// envp and argv pointer vectors and argc (Linux fs/exec.c and
// fs/binfmt_elf.c create_elf_tables; the seed's copyargs).
//
// Both the x86-64 layout (8-byte words) and the ia32 compat layout (4-byte
// words) are produced.
package stack
