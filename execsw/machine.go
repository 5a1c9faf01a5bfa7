package execsw

import (
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/internal/sys"
	"github.com/uexec/uexec/vm"
)

// Machine holds the system-wide settings that decide whether an image can
// be mapped, read once from /proc.
type Machine struct {
	// MmapMinAddr is vm.mmap_min_addr: no mapping may start below it
	// unless the new credentials hold CAP_SYS_RAWIO (security/commoncap.c
	// cap_mmap_addr).
	MmapMinAddr vm.Addr
	// CommitPages is the most pages one accountable mapping (the bss of
	// vm_brk_flags, a private writable file mapping) may charge
	// (mm/util.c __vm_enough_memory): RAM plus swap under
	// vm.overcommit_memory 0, CommitLimit less Committed_AS under 2.
	// 0 means no limit (vm.overcommit_memory 1).
	CommitPages uint64
	// AlignLarge says whether a file mapping of 2 MiB or more placed by
	// the kernel starts at a 2 MiB boundary (mm/huge_memory.c
	// thp_get_unmapped_area, which a filesystem such as ext4 or xfs
	// installs as its get_unmapped_area). It depends on the file's
	// filesystem: nil asks the filesystem by mapping the file (once per
	// device); a function answers for tests.
	AlignLarge func(f *vm.File) bool
	// NoIA32 reports that the kernel runs no ELF32 (i386) program
	// (CONFIG_IA32_EMULATION off, or ia32_emulation=false): an exec of
	// one is then ENOEXEC. nil asks the kernel, once (ia32.go).
	NoIA32 func() bool
	// Vsyscall32 is VsyscallOffset's answer; 0 asks the kernel, once,
	// unless NoIA32 is set.
	Vsyscall32 uint64
	// NoRandomize is kernel.randomize_va_space 0: no exec is randomised,
	// whatever the personality.
	NoRandomize bool
	// LegacyVALayout is vm.legacy_va_layout: every exec gets the legacy,
	// bottom-up mmap layout.
	LegacyVALayout bool
}

// DefaultMachine is x86 Linux's defaults with no limit on commitments and
// no alignment of large mappings.
var DefaultMachine = Machine{MmapMinAddr: vm.MmapMinAddr, AlignLarge: func(*vm.File) bool { return false },
	NoIA32: func() bool { return false }}

var machineOnce = sync.OnceValue(readMachine)

// MachineFromProc returns this machine's settings, read from /proc once;
// what cannot be read keeps DefaultMachine's value.
func MachineFromProc() *Machine {
	m := machineOnce()
	return &m
}

func readMachine() Machine {
	m := DefaultMachine
	m.AlignLarge, m.NoIA32 = nil, nil
	if v, ok := procUint("/proc/sys/vm/mmap_min_addr"); ok {
		m.MmapMinAddr = vm.Addr(v)
	}
	if v, err := sys.RandomizeVASpace(); err == nil {
		m.NoRandomize = v == 0
	}
	if v, ok := procUint("/proc/sys/vm/legacy_va_layout"); ok {
		m.LegacyVALayout = v != 0
	}
	mode, ok := procUint("/proc/sys/vm/overcommit_memory")
	if !ok {
		return m
	}
	if mode == 0 {
		// OVERCOMMIT_GUESS: totalram_pages() + total_swap_pages, which
		// sysinfo(2) gives without /proc/meminfo's cost.
		var si unix.Sysinfo_t
		if err := unix.Sysinfo(&si); err == nil {
			m.CommitPages = (si.Totalram + si.Totalswap) * uint64(max(si.Unit, 1)) / vm.PageSize
			return m
		}
	}
	b, err := sys.ReadFile("/proc/meminfo")
	if err != nil {
		return m
	}
	kb := map[string]uint64{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		if n, err := strconv.ParseUint(f[0], 10, 64); err == nil {
			kb[k] = n
		}
	}
	switch mode {
	case 0: // OVERCOMMIT_GUESS: totalram_pages() + total_swap_pages
		m.CommitPages = (kb["MemTotal"] + kb["SwapTotal"]) / (vm.PageSize >> 10)
	case 2: // OVERCOMMIT_NEVER
		if l, c := kb["CommitLimit"], kb["Committed_AS"]; l > c {
			m.CommitPages = (l - c) / (vm.PageSize >> 10)
		} else {
			m.CommitPages = 1
		}
	}
	return m
}

func procUint(path string) (uint64, bool) {
	b, err := sys.ReadFile(path)
	if err != nil {
		return 0, false
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return v, err == nil
}

// machine returns the request's machine settings, this machine's when the
// request has none.
func (req *Request) machine() *Machine {
	if req != nil && req.Machine != nil {
		return req.Machine
	}
	return MachineFromProc()
}

// Machine returns the machine settings of the exec: the request's, or
// this machine's when the request has none.
func (epp *Package) Machine() *Machine { return epp.Req.machine() }

// LargeAligned reports whether the kernel would place a mapping of 2 MiB
// or more of f at a 2 MiB boundary (Machine.AlignLarge).
func (epp *Package) LargeAligned(f *vm.File) bool {
	if m := epp.Machine(); m.AlignLarge != nil {
		return m.AlignLarge(f)
	}
	return alignsLarge(f)
}

// IA32 reports whether the kernel runs ELF32 programs (Machine.NoIA32).
func (m *Machine) IA32() bool {
	if m.NoIA32 != nil {
		return !m.NoIA32()
	}
	return ia32Once().runs
}

// VsyscallOffset is where __kernel_vsyscall (AT_SYSINFO) is in the vdso of
// an ELF32 program, as the kernel gave it to a probe; 0 when unknown.
func (m *Machine) VsyscallOffset() uint64 {
	if m.Vsyscall32 != 0 || m.NoIA32 != nil {
		return m.Vsyscall32
	}
	return ia32Once().vsyscall
}
