package stack

import (
	"encoding/binary"
	"fmt"

	"github.com/uexec/uexec/vm"
	"golang.org/x/sys/unix"
)

// Build lays out the initial stack of img byte for byte, as Linux does
// (fs/exec.c copy_strings and setup_arg_pages, fs/binfmt_elf.c
// create_elf_tables). From img.Top downwards:
//
//   - 8 zero bytes (bprm->p starts at vm_end - sizeof(void *) of the
//     kernel: 8 bytes for a compat image too);
//   - the file name (AT_EXECFN), then the environment strings, then the
//     argument strings, each block in order from low to high addresses,
//     because Linux copies them last to first downwards;
//   - the gap (arch_align_stack: p -= gap; p &= ~0xf);
//   - the platform string (AT_PLATFORM) and the 16 AT_RANDOM bytes;
//   - padding so that the final stack pointer is 16-byte aligned
//     (STACK_ROUND), then argc, argv, NULL, envp, NULL and the aux vector.
//
// Words are 8 bytes, 4 for a compat image. img.Auxv comes from Auxv64 or
// Auxv32; Build fills AT_RANDOM, AT_EXECFN and AT_PLATFORM and appends
// AT_NULL if it is missing. An empty img.Platform means "x86_64", or "i686"
// for a compat image.
//
// Preconditions: img.Args came from NewArgs (and Rewrite), so the strings
// hold no NUL byte.
func Build(img *Image) (*Layout, error) {
	if img.Args == nil {
		return nil, fmt.Errorf("stack: no arguments: %w", unix.EINVAL)
	}
	a := img.Args
	word := uint64(8)
	platform := img.Platform
	if img.Compat {
		word = 4
		if platform == "" {
			platform = "i686"
		}
		if img.Top > 1<<32 {
			return nil, fmt.Errorf("stack: compat stack top %v above 4 GiB: %w", img.Top, unix.EINVAL)
		}
	} else if platform == "" {
		platform = "x86_64"
	}
	auxv := append([]AuxEntry(nil), img.Auxv...)
	if len(auxv) == 0 || auxv[len(auxv)-1].Type != AT_NULL {
		auxv = append(auxv, AuxEntry{AT_NULL, 0})
	}
	argc, envc := len(a.Argv), len(a.Envp)

	// Everything below is computed with wrapping arithmetic, then checked
	// once: the lowest address must not have wrapped below zero.
	var argBytes, envBytes uint64
	for _, s := range a.Argv {
		argBytes += uint64(len(s)) + 1
	}
	for _, s := range a.Envp {
		envBytes += uint64(len(s)) + 1
	}
	execfnLen := uint64(len(a.ExecFn)) + 1
	platLen := uint64(len(platform)) + 1
	need := 8 + execfnLen + envBytes + argBytes + img.Gap + 15 + platLen + 16 +
		(uint64(len(auxv))*2+uint64(argc+1+envc+1+1))*word + 15
	if uint64(img.Top) < need || img.Top.PageOffset() != 0 {
		return nil, fmt.Errorf("stack: %d bytes do not fit below stack top %v: %w", need, img.Top, unix.EFAULT)
	}

	l := &Layout{Argc: argc}
	top := uint64(img.Top)
	p := top - 8
	p -= execfnLen
	l.ExecFnAddr = vm.Addr(p)
	l.EnvEnd = vm.Addr(p)
	p -= envBytes
	l.EnvStart, l.ArgEnd = vm.Addr(p), vm.Addr(p)
	p -= argBytes
	l.ArgStart = vm.Addr(p)

	p = (p - img.Gap) &^ 15 // arch_align_stack
	p -= platLen
	l.PlatformAddr = vm.Addr(p)
	p -= 16
	l.RandomAddr = vm.Addr(p)

	sp := p - uint64(len(auxv))*2*word             // STACK_ADD(p, ei_index)
	sp = (sp - uint64(argc+1+envc+1+1)*word) &^ 15 // STACK_ROUND(sp, items)
	l.SP = vm.Addr(sp)
	l.ArgvAddr = vm.Addr(sp + word)
	l.EnvpAddr = l.ArgvAddr + vm.Addr(uint64(argc+1)*word)
	l.AuxvAddr = l.EnvpAddr + vm.Addr(uint64(envc+1)*word)

	for i := range auxv {
		switch auxv[i].Type {
		case AT_RANDOM:
			auxv[i].Value = uint64(l.RandomAddr)
		case AT_EXECFN:
			auxv[i].Value = uint64(l.ExecFnAddr)
		case AT_PLATFORM:
			auxv[i].Value = uint64(l.PlatformAddr)
		}
		if img.Compat {
			// A compat exec's aux vector is of elf_addr_t, 32 bits
			// (compat_binfmt_elf.c): NEW_AUX_ENT truncates what does
			// not fit, an AT_ENTRY of e_entry plus a load bias past
			// 4 GiB for one (measured: the exec completes).
			auxv[i].Value = uint64(uint32(auxv[i].Value))
		}
	}
	l.Auxv = auxv

	buf := make([]byte, top-sp)
	at := func(addr uint64) []byte { return buf[addr-sp:] }
	putWord := func(addr, v uint64) {
		if word == 8 {
			binary.LittleEndian.PutUint64(at(addr), v)
		} else {
			binary.LittleEndian.PutUint32(at(addr), uint32(v))
		}
	}
	putStrings := func(addr uint64, ss []string, vec uint64) uint64 {
		for _, s := range ss {
			putWord(vec, addr)
			vec += word
			copy(at(addr), s) // the NUL is already there
			addr += uint64(len(s)) + 1
		}
		putWord(vec, 0)
		return addr
	}
	putWord(sp, uint64(argc))
	putStrings(uint64(l.ArgStart), a.Argv, uint64(l.ArgvAddr))
	putStrings(uint64(l.EnvStart), a.Envp, uint64(l.EnvpAddr))
	copy(at(uint64(l.ExecFnAddr)), a.ExecFn)
	copy(at(uint64(l.PlatformAddr)), platform)
	copy(at(uint64(l.RandomAddr)), img.Random[:])
	for i, e := range auxv {
		putWord(uint64(l.AuxvAddr)+uint64(2*i)*word, uint64(e.Type))
		putWord(uint64(l.AuxvAddr)+uint64(2*i+1)*word, e.Value)
	}
	l.Bytes = buf
	return l, nil
}
