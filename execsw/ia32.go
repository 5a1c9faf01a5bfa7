package execsw

import (
	"context"
	"os"
	"os/exec"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// exit32 is the smallest ELF32 (i386) program: an ELF header, one
// PT_LOAD of the file's 96 bytes at 0x8048000, and at 0x8048054
// "mov eax, 1; xor ebx, ebx; int 0x80": exit(0).
var exit32 = []byte{
	0x7f, 'E', 'L', 'F', 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, // e_ident: ELFCLASS32, LSB, version 1
	2, 0, 3, 0, 1, 0, 0, 0, // e_type ET_EXEC, e_machine EM_386, e_version
	0x54, 0x80, 0x04, 0x08, // e_entry 0x8048054
	0x34, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // e_phoff 52, e_shoff 0, e_flags 0
	0x34, 0, 0x20, 0, 1, 0, 0, 0, 0, 0, 0, 0, // e_ehsize 52, e_phentsize 32, e_phnum 1, no sections
	1, 0, 0, 0, 0, 0, 0, 0, // PT_LOAD, p_offset 0
	0, 0x80, 0x04, 0x08, 0, 0x80, 0x04, 0x08, // p_vaddr, p_paddr 0x8048000
	0x60, 0, 0, 0, 0x60, 0, 0, 0, // p_filesz, p_memsz 96
	5, 0, 0, 0, 0, 0x10, 0, 0, // p_flags R+X, p_align 0x1000
	0xb8, 1, 0, 0, 0, 0x31, 0xdb, 0xcd, 0x80, 0, 0, 0, // exit(0)
}

// ia32Once asks the kernel, once, whether it runs ELF32 programs: it
// execs exit32 from a memfd (about a millisecond, only when an ELF32
// file is planned). Where it cannot ask, the answer is yes.
var ia32Once = sync.OnceValue(func() bool {
	fd, err := unix.MemfdCreate("uexec-ia32-probe", unix.MFD_CLOEXEC)
	if err != nil {
		return true
	}
	f := os.NewFile(uintptr(fd), "uexec-ia32-probe")
	defer f.Close()
	if _, err := f.Write(exit32); err != nil {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/proc/self/fd/3")
	cmd.ExtraFiles = []*os.File{f}
	err = cmd.Run()
	if err == nil {
		return true
	}
	// The kernel's answer to a format it does not run is ENOEXEC.
	if pe, ok := err.(*os.PathError); ok && pe.Err == unix.ENOEXEC {
		return false
	}
	return true
})
