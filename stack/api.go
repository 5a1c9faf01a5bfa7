package stack

import (
	"github.com/uexec/uexec/vm"
)

// Linux limits on arguments (include/uapi/linux/binfmts.h, fs/exec.c).
const (
	MaxArgStrLen = 32 * vm.PageSize // MAX_ARG_STRLEN, including the NUL
	MaxArgs      = 0x7FFFFFFF       // MAX_ARG_STRINGS
)

// Args are the strings a new image receives, collected under Linux's limits
// (fs/exec.c copy_strings, bprm_stack_limits). They are what the seed
// gathers into its ARG_MAX buffer in execve1.
type Args struct {
	Argv   []string
	Envp   []string
	ExecFn string // the path as passed: AT_EXECFN and the last string on the stack

	avail int64  // bytes of string budget left (bprm->p - bprm->argmin)
	rlim  uint64 // RLIMIT_STACK: caps the growth of the new stack while strings are copied
	used  uint64 // bytes below the stack top: 8 and the strings (vm_end - bprm->p)
	peak  uint64 // the most used has been: the new stack does not shrink
}

// Host holds the aux vector values that come from the machine and the
// kernel rather than from the program: the same for every process started
// on this machine. HostFromProc reads them from /proc/self/auxv.
type Host struct {
	HWCap, HWCap2   uint64
	MinSigStkSz     uint64
	ClkTck          uint64
	RseqFeatureSize uint64
	RseqAlign       uint64
	HasRseq         bool   // the kernel emits AT_RSEQ_FEATURE_SIZE and AT_RSEQ_ALIGN
	HasMinSigStkSz  bool   // the kernel emits AT_MINSIGSTKSZ
	SysinfoEHDR     uint64 // where this process's vdso is (informational)

	// VvarLen is the distance from the start of the first vvar mapping
	// ([vvar], [vvar_vclock]) to the start of [vdso] in this process, and
	// VDSOLen the size of [vdso]: the kernel maps them together, so a new
	// image needs one top-down hole of VvarLen+VDSOLen bytes for them.
	// Both are 0 when the process has no vdso.
	VvarLen, VDSOLen uint64
	// VDSORegions are the labelled mappings from the first vvar page to
	// the end of [vdso], with offsets from the first: what the kernel
	// maps for the vdso in every new image.
	VDSORegions []VDSORegion
}

// AuxInfo holds the program-specific aux vector values.
type AuxInfo struct {
	SysinfoEHDR uint64 // AT_SYSINFO_EHDR: the vdso's ELF header in the new image
	Sysinfo     uint64 // AT_SYSINFO: __kernel_vsyscall, compat only
	Phdr        uint64
	Phent       uint64
	Phnum       uint64
	Base        uint64 // interpreter load address, 0 without one
	Flags       uint64
	Entry       uint64 // the program's entry, not the interpreter's
	UID, EUID   uint32
	GID, EGID   uint32
	Secure      bool
	ExecFD      int // AT_EXECFD when HasExecFD (binfmt_misc 'O')
	HasExecFD   bool
}

// Image is what Build needs to lay out an initial stack.
type Image struct {
	Top      vm.Addr // stack top: the 8 zero bytes end here
	Args     *Args
	Platform string   // AT_PLATFORM string: "x86_64" or "i686"
	Random   [16]byte // AT_RANDOM bytes
	// Gap is the random gap below the strings (Linux arch_align_stack:
	// get_random_u32 % 8192, then rounded down to 16); 0 without ASLR.
	Gap    uint64
	Auxv   []AuxEntry // from Auxv64 or Auxv32; AT_RANDOM, AT_EXECFN and AT_PLATFORM are filled in by Build
	Compat bool       // ia32 layout: 4-byte words
}

// Layout is a laid out initial stack: Bytes are the memory [SP, Top).
type Layout struct {
	SP                 vm.Addr
	Bytes              []byte
	Argc               int
	ArgvAddr, EnvpAddr vm.Addr // the pointer vectors
	AuxvAddr           vm.Addr
	Auxv               []AuxEntry // final values, AT_NULL last
	ArgStart, ArgEnd   vm.Addr    // mm->arg_start/arg_end
	EnvStart, EnvEnd   vm.Addr    // mm->env_start/env_end
	ExecFnAddr         vm.Addr
	RandomAddr         vm.Addr
	PlatformAddr       vm.Addr
}

// VDSORegion is one labelled mapping of the vdso area.
type VDSORegion struct {
	Off, Len uint64
	Perms    string // as /proc/PID/maps shows them: "r--p"
	Label    string // "[vvar]", "[vvar_vclock]", "[vdso]"
}
