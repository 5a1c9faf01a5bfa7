package stack

import "fmt"

// AuxType is the type word of an aux vector entry (Linux
// include/uapi/linux/auxvec.h, arch/x86/include/uapi/asm/auxvec.h).
type AuxType uint64

const (
	AT_NULL              AuxType = 0
	AT_IGNORE            AuxType = 1
	AT_EXECFD            AuxType = 2
	AT_PHDR              AuxType = 3
	AT_PHENT             AuxType = 4
	AT_PHNUM             AuxType = 5
	AT_PAGESZ            AuxType = 6
	AT_BASE              AuxType = 7
	AT_FLAGS             AuxType = 8
	AT_ENTRY             AuxType = 9
	AT_NOTELF            AuxType = 10
	AT_UID               AuxType = 11
	AT_EUID              AuxType = 12
	AT_GID               AuxType = 13
	AT_EGID              AuxType = 14
	AT_PLATFORM          AuxType = 15
	AT_HWCAP             AuxType = 16
	AT_CLKTCK            AuxType = 17
	AT_SECURE            AuxType = 23
	AT_BASE_PLATFORM     AuxType = 24
	AT_RANDOM            AuxType = 25
	AT_HWCAP2            AuxType = 26
	AT_RSEQ_FEATURE_SIZE AuxType = 27
	AT_RSEQ_ALIGN        AuxType = 28
	AT_HWCAP3            AuxType = 29
	AT_HWCAP4            AuxType = 30
	AT_EXECFN            AuxType = 31
	AT_SYSINFO           AuxType = 32
	AT_SYSINFO_EHDR      AuxType = 33
	AT_MINSIGSTKSZ       AuxType = 51
)

// auxNames is an array, not a map: static data, nothing to build at init.
var auxNames = [...]string{
	AT_NULL: "AT_NULL", AT_IGNORE: "AT_IGNORE", AT_EXECFD: "AT_EXECFD", AT_PHDR: "AT_PHDR",
	AT_PHENT: "AT_PHENT", AT_PHNUM: "AT_PHNUM", AT_PAGESZ: "AT_PAGESZ", AT_BASE: "AT_BASE",
	AT_FLAGS: "AT_FLAGS", AT_ENTRY: "AT_ENTRY", AT_NOTELF: "AT_NOTELF", AT_UID: "AT_UID",
	AT_EUID: "AT_EUID", AT_GID: "AT_GID", AT_EGID: "AT_EGID", AT_PLATFORM: "AT_PLATFORM",
	AT_HWCAP: "AT_HWCAP", AT_CLKTCK: "AT_CLKTCK", AT_SECURE: "AT_SECURE",
	AT_BASE_PLATFORM: "AT_BASE_PLATFORM", AT_RANDOM: "AT_RANDOM", AT_HWCAP2: "AT_HWCAP2",
	AT_RSEQ_FEATURE_SIZE: "AT_RSEQ_FEATURE_SIZE", AT_RSEQ_ALIGN: "AT_RSEQ_ALIGN",
	AT_HWCAP3: "AT_HWCAP3", AT_HWCAP4: "AT_HWCAP4", AT_EXECFN: "AT_EXECFN",
	AT_SYSINFO: "AT_SYSINFO", AT_SYSINFO_EHDR: "AT_SYSINFO_EHDR", AT_MINSIGSTKSZ: "AT_MINSIGSTKSZ",
}

func (t AuxType) String() string {
	if t < AuxType(len(auxNames)) && auxNames[t] != "" {
		return auxNames[t]
	}
	return fmt.Sprintf("AT_%d", uint64(t))
}

// ParseAuxType is the inverse of AuxType.String for the known names.
func ParseAuxType(s string) (AuxType, bool) {
	for t, n := range auxNames {
		if n == s && n != "" {
			return AuxType(t), true
		}
	}
	return 0, false
}

// AuxEntry is one aux vector pair.
type AuxEntry struct {
	Type  AuxType
	Value uint64
}
