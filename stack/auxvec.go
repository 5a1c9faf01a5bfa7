package stack

import "github.com/uexec/uexec/vm"

// clocksPerSec is USER_HZ, what Linux puts in AT_CLKTCK (CLOCKS_PER_SEC).
const clocksPerSec = 100

// Auxv64 returns the aux vector of a 64-bit image in the order Linux 6.18
// writes it (fs/binfmt_elf.c create_elf_tables after x86 ARCH_DLINFO),
// ending with AT_NULL. AT_SYSINFO_EHDR is present when the new image has a
// vdso (a.SysinfoEHDR != 0). AT_RANDOM, AT_EXECFN and AT_PLATFORM hold 0:
// Build fills them with the addresses it chooses.
func Auxv64(h *Host, a *AuxInfo) []AuxEntry {
	var v []AuxEntry
	if a.SysinfoEHDR != 0 {
		v = append(v, AuxEntry{AT_SYSINFO_EHDR, a.SysinfoEHDR})
	}
	return common(v, h, a)
}

// Auxv32 returns the aux vector of an ia32 image (compat_binfmt_elf.c with
// x86 ARCH_DLINFO_IA32): AT_SYSINFO (__kernel_vsyscall) and AT_SYSINFO_EHDR
// first when the image has a vdso, then the entries of Auxv64.
func Auxv32(h *Host, a *AuxInfo) []AuxEntry {
	var v []AuxEntry
	if a.SysinfoEHDR != 0 {
		v = append(v, AuxEntry{AT_SYSINFO, a.Sysinfo}, AuxEntry{AT_SYSINFO_EHDR, a.SysinfoEHDR})
	}
	return common(v, h, a)
}

func common(v []AuxEntry, h *Host, a *AuxInfo) []AuxEntry {
	if h.HasMinSigStkSz {
		v = append(v, AuxEntry{AT_MINSIGSTKSZ, h.MinSigStkSz})
	}
	clk := h.ClkTck
	if clk == 0 {
		clk = clocksPerSec
	}
	b2u := func(b bool) uint64 {
		if b {
			return 1
		}
		return 0
	}
	v = append(v,
		AuxEntry{AT_HWCAP, h.HWCap},
		AuxEntry{AT_PAGESZ, vm.PageSize},
		AuxEntry{AT_CLKTCK, clk},
		AuxEntry{AT_PHDR, a.Phdr},
		AuxEntry{AT_PHENT, a.Phent},
		AuxEntry{AT_PHNUM, a.Phnum},
		AuxEntry{AT_BASE, a.Base},
		AuxEntry{AT_FLAGS, a.Flags},
		AuxEntry{AT_ENTRY, a.Entry},
		AuxEntry{AT_UID, uint64(a.UID)},
		AuxEntry{AT_EUID, uint64(a.EUID)},
		AuxEntry{AT_GID, uint64(a.GID)},
		AuxEntry{AT_EGID, uint64(a.EGID)},
		AuxEntry{AT_SECURE, b2u(a.Secure)},
		AuxEntry{AT_RANDOM, 0},
		// x86 always defines ELF_HWCAP2, so the entry is there even when 0.
		AuxEntry{AT_HWCAP2, h.HWCap2},
		AuxEntry{AT_EXECFN, 0},
		AuxEntry{AT_PLATFORM, 0},
	)
	if a.HasExecFD {
		v = append(v, AuxEntry{AT_EXECFD, uint64(a.ExecFD)})
	}
	if h.HasRseq {
		v = append(v, AuxEntry{AT_RSEQ_FEATURE_SIZE, h.RseqFeatureSize}, AuxEntry{AT_RSEQ_ALIGN, h.RseqAlign})
	}
	return append(v, AuxEntry{AT_NULL, 0})
}
