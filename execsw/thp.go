package execsw

import (
	"sync"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/vm"
)

// pmdSize is the size of a transparent huge page on x86-64 (PMD_SIZE).
const pmdSize = 2 << 20

var thpByDev sync.Map // device -> bool: its files' large mappings are aligned

// alignsLarge asks the kernel whether a large mapping of f, placed by it,
// is aligned to 2 MiB: it maps 4 MiB of f (PROT_NONE, nothing is read)
// twice in this process and looks at the addresses. A filesystem that
// aligns does so every time; one that does not gives an aligned address
// one time in 512, twice one time in 262144. The answer is kept per
// device. Without a descriptor, or if the mapping fails, the answer is no.
func alignsLarge(f *vm.File) bool {
	if v, ok := thpByDev.Load(f.Dev); ok {
		return v.(bool)
	}
	d, ok := f.R.(interface{ Fd() uintptr })
	if !ok {
		return false
	}
	aligned := true
	for range 2 {
		a, _, errno := unix.Syscall6(unix.SYS_MMAP, 0, 2*pmdSize, unix.PROT_NONE, unix.MAP_PRIVATE, d.Fd(), 0)
		if errno != 0 {
			return false
		}
		unix.Syscall(unix.SYS_MUNMAP, a, 2*pmdSize, 0)
		aligned = aligned && a%pmdSize == 0
	}
	thpByDev.Store(f.Dev, aligned)
	return aligned
}
