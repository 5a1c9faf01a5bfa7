package kernelexec

import (
	"encoding/binary"

	"github.com/uexec/uexec/stack"

	"bytes"
	"fmt"
	"strconv"
	"strings"
	"syscall"
)

// Options say which program Snapshot starts and how.
type Options struct {
	Path string   // the path passed to execve
	Argv []string // nil or empty: argc 0 (Linux then supplies "" as argv[0])
	Envp []string // the whole environment; nil is empty
	Dir  string   // working directory; "" keeps the caller's

	// NoRandom starts the program with the ADDR_NO_RANDOMIZE personality
	// (what setarch -R does), so that the stack top, mmap base, PIE base
	// and brk are not randomised.
	NoRandom bool
	// Legacy adds the ADDR_COMPAT_LAYOUT personality (setarch -L): the
	// legacy, bottom-up mmap layout.
	Legacy bool

	// Rlimits are set in the child before the exec (RLIMIT_STACK changes
	// the layout). Setting any starts the program through the launcher,
	// which needs a C compiler.
	Rlimits []Rlimit

	// Files become the child's descriptors 0, 1, 2, ...; nil gives it
	// /dev/null on 0, 1 and 2.
	Files []uintptr

	// Cred, when set, are the ids the child takes before its exec
	// (setgroups, setresgid, setresuid; what setpriv --reuid --regid
	// --clear-groups does), dropping root's capabilities. It is ignored
	// with Rlimits (the launcher keeps the caller's ids).
	Cred *Cred
}

// Cred is a user and group id and the supplementary groups.
type Cred struct {
	UID, GID uint32
	Groups   []uint32
}

// KilledError is an exec the kernel failed after the point of no return:
// the child got the fatal Signal (SIGSEGV, force_fatal_sig in
// bprm_execve) instead of stopping at its first instruction.
type KilledError struct {
	Pid    int
	Signal syscall.Signal
}

func (e *KilledError) Error() string {
	return fmt.Sprintf("kernelexec: pid %d: killed by %v before its exec", e.Pid, e.Signal)
}

// Rlimit is one resource limit (RLIMIT_STACK = 3 on Linux).
type Rlimit struct {
	Resource int
	Cur, Max uint64
}

// Regs are the general registers as ptrace reports them (struct
// user_regs_struct on x86-64).
type Regs struct {
	R15, R14, R13, R12, Rbp, Rbx, R11, R10 uint64
	R9, R8, Rax, Rcx, Rdx, Rsi, Rdi        uint64
	OrigRax, Rip, Cs, Eflags, Rsp, Ss      uint64
	FsBase, GsBase, Ds, Es, Fs, Gs         uint64
}

// fields lists the registers by name in user_regs_struct order.
func (r *Regs) fields() []namedVal {
	return []namedVal{
		{"r15", r.R15}, {"r14", r.R14}, {"r13", r.R13}, {"r12", r.R12},
		{"rbp", r.Rbp}, {"rbx", r.Rbx}, {"r11", r.R11}, {"r10", r.R10},
		{"r9", r.R9}, {"r8", r.R8}, {"rax", r.Rax}, {"rcx", r.Rcx},
		{"rdx", r.Rdx}, {"rsi", r.Rsi}, {"rdi", r.Rdi}, {"orig_rax", r.OrigRax},
		{"rip", r.Rip}, {"cs", r.Cs}, {"eflags", r.Eflags}, {"rsp", r.Rsp},
		{"ss", r.Ss}, {"fs_base", r.FsBase}, {"gs_base", r.GsBase}, {"ds", r.Ds},
		{"es", r.Es}, {"fs", r.Fs}, {"gs", r.Gs},
	}
}

type namedVal struct {
	name string
	v    uint64
}

// FPRegs is the FXSAVE area PTRACE_GETFPREGS returns (struct
// user_fpregs_struct); exec resets it (fpstate_init: fcw 0x37f, mxcsr
// 0x1f80, everything else 0).
type FPRegs struct {
	Cwd, Swd, Ftw, Fop uint16
	Rip, Rdp           uint64
	Mxcsr, MxcrMask    uint32
	St                 [32]uint32 // 8 x87 registers, 16 bytes each
	Xmm                [64]uint32 // 16 XMM registers
	Padding            [24]uint32
}

// Rseq is the rseq registration ptrace reports
// (PTRACE_GET_RSEQ_CONFIGURATION); exec clears it.
type Rseq struct {
	Addr      uint64
	Size      uint32
	Signature uint32
	Flags     uint32
}

// Mapping is one line of /proc/PID/maps.
type Mapping struct {
	Start, End uint64
	Perms      string // "r-xp"
	Offset     uint64
	Dev        string // "fe:01"
	Inode      uint64
	Path       string // file, "[stack]", "[vdso]", ... or ""
}

func (m Mapping) String() string {
	return fmt.Sprintf("%x-%x %s %08x %s %d %s", m.Start, m.End, m.Perms, m.Offset, m.Dev, m.Inode, m.Path)
}

// Aux is one aux vector pair.
type Aux struct {
	Type, Val uint64
}

func (a Aux) String() string { return fmt.Sprintf("%s=%#x", AuxName(a.Type), a.Val) }

// Aux vector types, as uint64 for Aux.Type; the names are package
// stack's.
const (
	AT_BASE         = uint64(stack.AT_BASE)
	AT_ENTRY        = uint64(stack.AT_ENTRY)
	AT_EXECFN       = uint64(stack.AT_EXECFN)
	AT_HWCAP        = uint64(stack.AT_HWCAP)
	AT_NULL         = uint64(stack.AT_NULL)
	AT_PHDR         = uint64(stack.AT_PHDR)
	AT_PLATFORM     = uint64(stack.AT_PLATFORM)
	AT_RANDOM       = uint64(stack.AT_RANDOM)
	AT_SYSINFO      = uint64(stack.AT_SYSINFO)
	AT_SYSINFO_EHDR = uint64(stack.AT_SYSINFO_EHDR)
)

// AuxName returns the kernel's name for an aux vector type, or "AT_<n>".
func AuxName(t uint64) string { return stack.AuxType(t).String() }

// auxIsAddr reports whether the value of an aux type is an address in the
// new image (and so moves with ASLR).
func auxIsAddr(t uint64) bool {
	switch t {
	case AT_PHDR, AT_BASE, AT_ENTRY, AT_PLATFORM, AT_RANDOM, AT_EXECFN, AT_SYSINFO, AT_SYSINFO_EHDR:
		return true
	}
	return false
}

// Stat holds the /proc/PID/stat fields an exec decides (proc(5) field
// numbers in the comments).
type Stat struct {
	Comm       string // 2, without the parentheses
	StartCode  uint64 // 26
	EndCode    uint64 // 27
	StartStack uint64 // 28
	StartData  uint64 // 45
	EndData    uint64 // 46
	StartBrk   uint64 // 47
	ArgStart   uint64 // 48
	ArgEnd     uint64 // 49
	EnvStart   uint64 // 50
	EnvEnd     uint64 // 51
}

func (s *Stat) fields() []namedVal {
	return []namedVal{
		{"start_code", s.StartCode}, {"end_code", s.EndCode}, {"start_stack", s.StartStack},
		{"start_data", s.StartData}, {"end_data", s.EndData}, {"start_brk", s.StartBrk},
		{"arg_start", s.ArgStart}, {"arg_end", s.ArgEnd}, {"env_start", s.EnvStart}, {"env_end", s.EnvEnd},
	}
}

// StatusKeys are the /proc/PID/status lines a snapshot keeps. (Not SigQ:
// it counts the signals queued for every process of the user.)
var StatusKeys = []string{
	"Umask", "Uid", "Gid", "Groups", "NoNewPrivs", "Seccomp",
	"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb",
	"SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt",
}

// Snap is what a process looks like at one instant, normally its first
// instruction after an exec.
type Snap struct {
	Pid     int
	Regs    Regs
	FPRegs  FPRegs
	Rseq    Rseq
	RseqErr string // why Rseq could not be read, "" when it was

	Personality uint32 // /proc/PID/personality
	Maps        []Mapping
	Auxv        []Aux // /proc/PID/auxv, AT_NULL last
	Stat        Stat
	Comm        string // /proc/PID/comm without the newline
	Cmdline     []byte
	Environ     []byte
	Status      map[string]string // StatusKeys, tabs as the kernel writes them
	Limits      []string          // /proc/PID/limits lines after the header
	Exe         string            // readlink /proc/PID/exe
	Cwd         string            // readlink /proc/PID/cwd
	Fds         map[int]string    // readlink /proc/PID/fd/N

	// Stack holds the memory [StackAddr, StackAddr+len(Stack)): from rsp
	// to the end of the [stack] mapping (or of the mapping holding rsp).
	StackAddr uint64
	Stack     []byte
}

// Mapping returns the mapping containing addr.
func (s *Snap) Mapping(addr uint64) (Mapping, bool) {
	for _, m := range s.Maps {
		if addr >= m.Start && addr < m.End {
			return m, true
		}
	}
	return Mapping{}, false
}

// Named returns the first mapping whose path is name ("[stack]", "[heap]",
// "[vdso]").
func (s *Snap) Named(name string) (Mapping, bool) {
	for _, m := range s.Maps {
		if m.Path == name {
			return m, true
		}
	}
	return Mapping{}, false
}

// AuxVal returns the value of the first aux entry of type t.
func (s *Snap) AuxVal(t uint64) (uint64, bool) {
	for _, a := range s.Auxv {
		if a.Type == t {
			return a.Val, true
		}
	}
	return 0, false
}

// ParseMaps parses /proc/PID/maps.
func ParseMaps(b []byte) ([]Mapping, error) {
	var ms []Mapping
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if line == "" {
			continue
		}
		m, err := parseMapsLine(line)
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	return ms, nil
}

func parseMapsLine(line string) (Mapping, error) {
	var m Mapping
	bad := func() (Mapping, error) { return Mapping{}, fmt.Errorf("kernelexec: bad maps line %q", line) }
	f := strings.Fields(line)
	if len(f) < 5 {
		return bad()
	}
	lo, hi, ok := strings.Cut(f[0], "-")
	if !ok {
		return bad()
	}
	var err1, err2, err3, err4 error
	m.Start, err1 = strconv.ParseUint(lo, 16, 64)
	m.End, err2 = strconv.ParseUint(hi, 16, 64)
	m.Perms = f[1]
	m.Offset, err3 = strconv.ParseUint(f[2], 16, 64)
	m.Dev = f[3]
	m.Inode, err4 = strconv.ParseUint(f[4], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
		return bad()
	}
	if len(f) > 5 {
		// The path is everything after the inode column; it may hold spaces.
		i := strings.Index(line, " "+f[4]+" ")
		m.Path = strings.TrimLeft(line[i+len(f[4])+2:], " ")
	}
	return m, nil
}

// ParseAuxv parses a 64-bit aux vector (/proc/PID/auxv) up to and
// including AT_NULL.
func ParseAuxv(b []byte) ([]Aux, error) {
	var v []Aux
	for len(b) >= 16 {
		a := Aux{le64(b), le64(b[8:])}
		v = append(v, a)
		b = b[16:]
		if a.Type == AT_NULL {
			return v, nil
		}
	}
	return v, fmt.Errorf("kernelexec: aux vector without AT_NULL")
}

// ParseAuxv32 parses the aux vector of a compat (ia32) image, whose
// entries are pairs of 32-bit words (compat_binfmt_elf.c).
func ParseAuxv32(b []byte) ([]Aux, error) {
	var v []Aux
	for len(b) >= 8 {
		a := Aux{uint64(binary.LittleEndian.Uint32(b)), uint64(binary.LittleEndian.Uint32(b[4:]))}
		v = append(v, a)
		b = b[8:]
		if a.Type == AT_NULL {
			return v, nil
		}
	}
	return v, fmt.Errorf("kernelexec: aux vector without AT_NULL")
}

// user32CS is __USER32_CS, the code segment of a compat image.
const user32CS = 0x23

func le64(b []byte) uint64 {
	_ = b[7]
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

// ParseStat parses /proc/PID/stat.
func ParseStat(b []byte) (Stat, error) {
	var s Stat
	str := strings.TrimRight(string(b), "\n")
	open := strings.IndexByte(str, '(')
	close := strings.LastIndexByte(str, ')') // comm may hold ')'
	if open < 0 || close < open {
		return s, fmt.Errorf("kernelexec: bad stat %q", str)
	}
	s.Comm = str[open+1 : close]
	f := strings.Fields(str[close+1:]) // f[0] is field 3
	field := func(n int) uint64 {
		if n-3 >= len(f) {
			return 0
		}
		v, _ := strconv.ParseUint(f[n-3], 10, 64)
		return v
	}
	if len(f) < 51-2 {
		return s, fmt.Errorf("kernelexec: stat has %d fields, want at least 51", len(f)+2)
	}
	s.StartCode, s.EndCode, s.StartStack = field(26), field(27), field(28)
	s.StartData, s.EndData, s.StartBrk = field(45), field(46), field(47)
	s.ArgStart, s.ArgEnd, s.EnvStart, s.EnvEnd = field(48), field(49), field(50), field(51)
	return s, nil
}

// ParseStatus keeps the StatusKeys lines of /proc/PID/status.
func ParseStatus(b []byte) map[string]string {
	want := make(map[string]bool, len(StatusKeys))
	for _, k := range StatusKeys {
		want[k] = true
	}
	m := make(map[string]string)
	for _, line := range bytes.Split(b, []byte("\n")) {
		k, v, ok := strings.Cut(string(line), ":")
		if ok && want[k] {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}
