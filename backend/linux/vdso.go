//go:build linux && amd64

package linux

import (
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/stack"
)

// vdsoFacts are what the stub needs of this kernel's vdso, the same in
// every process: it is one image, mapped by the kernel.
type vdsoFacts struct {
	ok bool // this process has a vdso
	// gadget is the offset from the vdso's start of a `syscall` followed
	// only by instructions that zero registers, then `ret`, clearing at
	// least rcx, rsi, rdi and r11; 0 if there is none. The stub enters
	// the program through it (see internal/planstub).
	gadget uint64
}

var vdsoOnce = sync.OnceValue(findVDSO)

// findVDSO reads this process's vdso where the aux vector and the maps the
// planner reads anyway put it (stack.HostFromProc).
func findVDSO() vdsoFacts {
	h, err := stack.HostFromProc()
	if err != nil || h.SysinfoEHDR == 0 || h.VDSOLen == 0 {
		return vdsoFacts{}
	}
	text := make([]byte, h.VDSOLen)
	local := []unix.Iovec{{Base: &text[0], Len: uint64(len(text))}}
	remote := []unix.RemoteIovec{{Base: uintptr(h.SysinfoEHDR), Len: len(text)}}
	if n, err := unix.ProcessVMReadv(os.Getpid(), local, remote, 0); err != nil || n != len(text) {
		return vdsoFacts{ok: true}
	}
	return vdsoFacts{ok: true, gadget: findGadget(text)}
}

// findGadget returns the offset of a `syscall` (0f 05) followed by xors of
// registers with themselves and `ret` (c3) that clear rcx, rsi, rdi and
// r11: then a munmap made there returns into the address on the stack
// with only rax (the result, 0) and those registers changed.
func findGadget(text []byte) uint64 {
	const need = 1<<1 | 1<<6 | 1<<7 | 1<<11 // rcx rsi rdi r11
	for i := 0; i+2 < len(text); i++ {
		if text[i] != 0x0f || text[i+1] != 0x05 {
			continue
		}
		zeroed := 0
		for j := i + 2; j < len(text); {
			b := text[j]
			rex := 0
			if b&0xf0 == 0x40 {
				rex = int(b)
				j++
				if j >= len(text) {
					break
				}
				b = text[j]
			}
			if b == 0xc3 && rex == 0 {
				if zeroed&need == need {
					return uint64(i)
				}
				break
			}
			// xor r/m32, r32 (31 /r) with mod 11 and reg == rm.
			if (b != 0x31 && b != 0x33) || j+1 >= len(text) {
				break
			}
			m := text[j+1]
			reg, rm := int(m>>3&7), int(m&7)
			if m>>6 != 3 || reg != rm || (rex&4 != 0) != (rex&1 != 0) {
				break
			}
			if rex&1 != 0 {
				rm += 8
			}
			zeroed |= 1 << rm
			j += 2
		}
	}
	return 0
}
