package execsw

import (
	"context"
	"encoding/binary"
	"os"
	"os/exec"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// probe32 is a small ELF32 (i386) program: an ELF header, one PT_LOAD of
// the file's 157 bytes at 0x8048000, and at 0x8048054 code that walks its
// aux vector and writes AT_SYSINFO - AT_SYSINFO_EHDR (where
// __kernel_vsyscall is in the 32-bit vdso) to descriptor 1 as 4 bytes,
// then exits 0. (Assembled with gcc -m32 from the instructions in the
// comments.)
var probe32 = []byte{
	0x7f, 'E', 'L', 'F', 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, // e_ident: ELFCLASS32, LSB, version 1
	2, 0, 3, 0, 1, 0, 0, 0, // e_type ET_EXEC, e_machine EM_386, e_version
	0x54, 0x80, 0x04, 0x08, // e_entry 0x8048054
	0x34, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // e_phoff 52, e_shoff 0, e_flags 0
	0x34, 0, 0x20, 0, 1, 0, 0, 0, 0, 0, 0, 0, // e_ehsize 52, e_phentsize 32, e_phnum 1, no sections
	1, 0, 0, 0, 0, 0, 0, 0, // PT_LOAD, p_offset 0
	0, 0x80, 0x04, 0x08, 0, 0x80, 0x04, 0x08, // p_vaddr, p_paddr 0x8048000
	0x9d, 0, 0, 0, 0x9d, 0, 0, 0, // p_filesz, p_memsz 157
	5, 0, 0, 0, 0, 0x10, 0, 0, // p_flags R+X, p_align 0x1000
	0x8b, 0x0c, 0x24, // mov (%esp),%ecx: argc
	0x8d, 0x74, 0x8c, 0x08, // lea 8(%esp,%ecx,4),%esi: envp
	0xad, 0x85, 0xc0, 0x75, 0xfb, // 1: lodsl; test %eax,%eax; jnz 1b: past envp's NULL
	0x31, 0xff, 0x31, 0xed, // xor %edi,%edi; xor %ebp,%ebp
	0xad, 0x8b, 0x16, 0x83, 0xc6, 0x04, // 2: lodsl (a_type); mov (%esi),%edx (a_val); add $4,%esi
	0x85, 0xc0, 0x74, 0x10, // test %eax,%eax; jz 4f: AT_NULL
	0x83, 0xf8, 0x20, 0x75, 0x02, 0x89, 0xd7, // cmp $32 (AT_SYSINFO),%eax; jne 3f; mov %edx,%edi
	0x83, 0xf8, 0x21, 0x75, 0xea, 0x89, 0xd5, 0xeb, 0xe6, // 3: cmp $33 (AT_SYSINFO_EHDR); jne 2b; mov %edx,%ebp; jmp 2b
	0x29, 0xef, 0x57, 0x89, 0xe1, // 4: sub %ebp,%edi; push %edi; mov %esp,%ecx
	0xbb, 1, 0, 0, 0, 0xba, 4, 0, 0, 0, 0xb8, 4, 0, 0, 0, 0xcd, 0x80, // write(1, %esp, 4)
	0xb8, 1, 0, 0, 0, 0x31, 0xdb, 0xcd, 0x80, // exit(0)
}

// ia32 is what the kernel said of ELF32 programs: whether it runs them,
// and the offset of __kernel_vsyscall in their vdso (0 when unknown).
type ia32 struct {
	runs     bool
	vsyscall uint64
}

// ia32Once asks the kernel, once, whether it runs ELF32 programs: it
// execs probe32 from a memfd (about a millisecond, only when an ELF32
// file is planned). Where it cannot ask, the answer is yes.
var ia32Once = sync.OnceValue(func() ia32 {
	yes := ia32{runs: true}
	fd, err := unix.MemfdCreate("uexec-ia32-probe", unix.MFD_CLOEXEC)
	if err != nil {
		return yes
	}
	f := os.NewFile(uintptr(fd), "uexec-ia32-probe")
	defer f.Close()
	if _, err := f.Write(probe32); err != nil {
		return yes
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/proc/self/fd/3")
	cmd.ExtraFiles = []*os.File{f}
	out, err := cmd.Output()
	if err == nil {
		if len(out) == 4 {
			yes.vsyscall = uint64(binary.LittleEndian.Uint32(out))
		}
		return yes
	}
	// The kernel's answer to a format it does not run is ENOEXEC.
	if pe, ok := err.(*os.PathError); ok && pe.Err == unix.ENOEXEC {
		return ia32{}
	}
	return yes
})
