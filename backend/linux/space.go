//go:build linux && amd64

package linux

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/vm"
)

// space is the vm.AddressSpace of the process being built: every operation
// is a system call the process makes (through remote), so that mappings,
// rlimits and accounting are the process's own.
type space struct {
	b *builder
}

var _ vm.AddressSpace = space{}

// place returns the address and extra flags for a mapping: fixed ones land
// exactly (MAP_FIXED replaces the reservation they go into); others are a
// hint with NoRandom, so that the plan's deterministic address is taken,
// and left to the kernel otherwise, so that they follow this process's own
// randomised mmap_base as a kernel exec's would.
func (s space) place(addr vm.Addr, fixed bool) (uint64, int) {
	if fixed {
		return uint64(addr), unix.MAP_FIXED
	}
	if s.b.noRandom {
		return uint64(addr), 0
	}
	return 0, 0
}

func (s space) landed(op string, addr vm.Addr, fixed bool, got uint64) (vm.Addr, error) {
	if fixed && got != uint64(addr) {
		return 0, fmt.Errorf("%s: fixed mapping at %v landed at %#x: %w", op, addr, got, unix.EFAULT)
	}
	if !fixed && s.b.noRandom && got != uint64(addr) {
		s.b.note("a mapping planned at %v went to %#x (something occupied the planned range)", addr, got)
	}
	return vm.Addr(got), nil
}

func (s space) MapFile(addr vm.Addr, n uint64, prot vm.Prot, f *vm.File, off uint64, fixed bool) (vm.Addr, error) {
	fd, ok := s.b.fds[f]
	if !ok {
		return 0, fmt.Errorf("mmap: %s was not passed to the process: %w", f.Name(), unix.EBADF)
	}
	hint, flags := s.place(addr, fixed)
	got, err := s.b.r.Syscall("mmap", unix.SYS_MMAP, hint, n, uint64(prot), uint64(unix.MAP_PRIVATE|flags), uint64(fd), off)
	if err != nil {
		return 0, fmt.Errorf("%s at %#x: %w", f.Name(), off, err)
	}
	return s.landed("mmap", addr, fixed, got)
}

func (s space) MapAnon(addr vm.Addr, n uint64, prot vm.Prot, fixed bool) (vm.Addr, error) {
	hint, flags := s.place(addr, fixed)
	got, err := s.b.r.Syscall("mmap", unix.SYS_MMAP, hint, n, uint64(prot),
		uint64(unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|flags), ^uint64(0), 0)
	if err != nil {
		return 0, err
	}
	return s.landed("mmap", addr, fixed, got)
}

func (s space) Unmap(addr vm.Addr, n uint64) error {
	_, err := s.b.r.Syscall("munmap", unix.SYS_MUNMAP, uint64(addr), n)
	return err
}

func (s space) Protect(addr vm.Addr, n uint64, prot vm.Prot) error {
	_, err := s.b.r.Syscall("mprotect", unix.SYS_MPROTECT, uint64(addr), n, uint64(prot))
	return err
}

func (s space) Write(addr vm.Addr, b []byte) error { return s.b.r.WriteMem(uint64(addr), b) }
