package execsw

import (
	"errors"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/stack"
	"github.com/uexec/uexec/vm"
)

// ErrFatal marks an exec that passes every check Linux makes before the
// point of no return and fails after it: execve does not return, the
// process is killed with SIGSEGV. Handlers wrap it; Execve then returns a
// Plan whose Fatal field says why.
var ErrFatal = errors.New("exec fails after the point of no return (SIGSEGV)")

// Priority is an exec switch entry's class (the seed's EXECSW_PRIO_*):
// entries are tried First, then Any, then Last, in the order they were added
// within a class.
type Priority int

const (
	PrioFirst Priority = iota
	PrioAny
	PrioLast
)

// Format is a format handler (one execsw entry's es_makecmds and es_hdrsz).
type Format interface {
	// Name is the format's name in a plan's handler chain: "elf", "script".
	Name() string
	// HeaderSize is how many bytes of the file's start the handler needs
	// to recognise it (es_hdrsz).
	HeaderSize() int
	// MakeCmds recognises epp.Hdr and builds the image into epp: vm
	// commands, entry point, ELF auxv data, or fake arguments and a
	// recursive CheckExec for an interpreter. It returns an error
	// wrapping unix.ENOEXEC when the file is not its format.
	MakeCmds(epp *Package) error
}

// Flags are the seed's EXEC_* package flags.
type Flags uint32

const (
	FlagIndir   Flags = 1 << iota // EXEC_INDIR: a #! rewrite has happened
	FlagHasFD                     // EXEC_HASFD
	FlagHasArgl                   // EXEC_HASARGL: FakeArgs are set
	FlagSkipArg                   // EXEC_SKIPARG: drop the caller's argv[0]
	FlagDestr                     // EXEC_DESTR: stop trying other handlers
	Flag32                        // EXEC_32: a 32-bit image
	// FlagPreserveArgv0: a binfmt_misc rule with P kept the caller's
	// argv[0] (BINPRM_FLAGS_PRESERVE_ARGV0, AT_FLAGS_PRESERVE_ARGV0).
	FlagPreserveArgv0
)

// Cred is a process's credentials as exec uses them.
type Cred struct {
	UID, EUID, SUID, FSUID uint32
	GID, EGID, SGID, FSGID uint32
	Groups                 []uint32
	NoNewPrivs             bool
	// CapDACOverride, CapDACReadSearch: the caller holds these in its
	// effective set (root normally does), which changes permission checks.
	CapDACOverride   bool
	CapDACReadSearch bool
	// CapSysRawio: the program will hold CAP_SYS_RAWIO in its effective
	// set once exec has installed its credentials (begin_new_exec), which
	// lets it map below vm.mmap_min_addr (cap_mmap_addr). For a file
	// without set-id bits or file capabilities that is the caller's
	// bounding set when its effective uid is 0, else its ambient set
	// (cap_bprm_creds_from_file): what the caller holds in its effective
	// set now does not count.
	CapSysRawio bool
}

// Request is one execve as a caller makes it, with the caller's state that
// the exec reads.
type Request struct {
	Path string   // as passed; relative paths resolve against Dir
	Argv []string // nil and empty are both argc == 0
	Envp []string

	Dir  string // caller's cwd, an absolute host path
	Root string // caller's root, an absolute host path; "" means "/"
	// EmulRoot is the emulation root (NetBSD's TRYEMULROOT): an absolute
	// host path without symlinks, inside Root; "" means none. Absolute
	// names of the program and its interpreters are looked up under it
	// first and in Root when absent there (see emulroot.go).
	EmulRoot string

	// File, when set, is the already-open file to execute (execveat with
	// AT_EMPTY_PATH, fexecve); Path is then the /dev/fd/N name a #!
	// interpreter receives.
	File *os.File
	// NoFollow is execveat's AT_SYMLINK_NOFOLLOW: a final symlink -> ELOOP.
	NoFollow bool
	// CloseOnExec reports that File's descriptor is O_CLOEXEC: a script
	// reached through it gets ENOENT (its /dev/fd name would be gone).
	CloseOnExec bool

	Cred Cred
	// SearchAsSelf says that the kernel's permission checks of a walk
	// are the same for Cred as for this process (Cred.SameSearch): this
	// process's own lookup of a path then answers as the caller's would.
	SearchAsSelf bool
	RlimitStack  uint64 // RLIMIT_STACK soft limit; ^uint64(0) is unlimited
	RlimitData   uint64 // RLIMIT_DATA soft limit
	// NoRandom is personality ADDR_NO_RANDOMIZE (or randomize_va_space
	// 0): every address is the kernel's deterministic one.
	NoRandom bool
	// Legacy is personality ADDR_COMPAT_LAYOUT (setarch -L): the legacy,
	// bottom-up mmap layout (so is vm.legacy_va_layout, the Machine's).
	Legacy bool
	// Downgrade says that whoever applies the plan cannot raise
	// privileges (uexec does not run as root): set-id bits then leave the
	// ids unchanged but still make the exec secure, as Linux does for a
	// process traced by an unprivileged tracer.
	Downgrade bool
	// Rand supplies randomness (ASLR offsets, AT_RANDOM); nil means
	// crypto/rand.
	Rand io.Reader
	// Host holds the machine's aux vector values; nil reads them from
	// this process (stack.HostFromProc).
	Host *stack.Host
	// Machine holds the system-wide settings (vm.mmap_min_addr, the
	// overcommit limit); nil reads them from /proc (MachineFromProc).
	Machine *Machine
	// Pid is the caller's process: the descriptor AT_EXECFD will get
	// (binfmt_misc O) is predicted from its descriptor table, and procfs's
	// self link in a path names it. 0 means this process.
	Pid int
	// Tid is the caller's thread, which procfs's thread-self names; 0
	// means Pid.
	Tid int
}

// Link is one step of a handler chain: which format matched which file.
type Link struct {
	Format string `json:"format"`
	// Name is the binfmt_misc rule that matched; "" for other formats.
	Name string `json:"name,omitempty"`
	Path string `json:"path"`
	// Host is the file Path was found as under the emulation root, a
	// host path; "" when Path names the file in the caller's root.
	Host string `json:"host,omitempty"`
}

// Attr is what exec needs of the file's attributes (the seed's ep_vap).
type Attr struct {
	Mode     uint32 // st_mode, set-id bits cleared on a nosuid mount
	UID, GID uint32
	Dev, Ino uint64
	Size     int64
	NoSuid   bool // the file's mount is nosuid
	// Mtime and Ctime, with Dev, Ino and Size, tell a changed file from
	// the one a policy checked before.
	Mtime, Ctime unix.Timespec
	// Caps are the file's capabilities, read only for a caller whose real
	// uid is not 0: root's exec gets its bounding set whatever they are.
	Caps FileCaps
}

// FileCaps are a file's capabilities: its security.capability attribute
// (struct vfs_cap_data, revisions 1 to 3; the low 64 capabilities).
type FileCaps struct {
	Present                bool
	Effective              bool // VFS_CAP_FLAGS_EFFECTIVE
	Permitted, Inheritable uint64
}

// ELFInfo is what the ELF handler records for the aux vector, mm fields and
// the entry (the seed's ep_emul_arg).
type ELFInfo struct {
	Phdr, Phent, Phnum uint64
	Entry              vm.Addr // the program's entry (AT_ENTRY)
	InterpBase         vm.Addr // AT_BASE; 0 without an interpreter
	InterpEntry        vm.Addr
	Interp             string // PT_INTERP path, "" without one
	StartCode, EndCode vm.Addr
	StartData, EndData vm.Addr
	StartBrk           vm.Addr
	ExecStack          bool // PT_GNU_STACK with PF_X (or none, for ia32)
	ReadImpliesExec    bool
}

// Package is the seed's struct exec_package: one exec in progress.
type Package struct {
	Req *Request
	Sw  *Switch

	// Path is the name being executed now: the caller's path, or a #!
	// interpreter's during the recursive CheckExec.
	Path     string
	Resolved string // the path after symlinks, from the root (ep_resolvedname)
	File     *vm.File
	Attr     Attr

	Hdr      []byte // ep_hdr: HeaderSize bytes of the switch
	HdrValid int    // ep_hdrvalid: bytes actually read
	// Head is every byte read of the file's start, Hdr's and more (up to
	// a page): handlers may find what they read next in it.
	Head []byte

	Cmds  []vm.Cmd
	Entry vm.Addr // where execution starts (the interpreter's entry if any)
	ELF   ELFInfo

	Flags    Flags
	FakeArgs []string // arguments a #! rewrite prepends (ep_fa)
	Depth    int      // nested #! rewrites so far

	Chain []Link
	Esw   *Entry // the matched switch entry (ep_esch)
	// progAttr is Attr of the file the caller named (Plan.Program).
	progAttr Attr

	// Space is the geometry of the new address space; handlers take the
	// ranges they use from it.
	Space *vm.Layout
	// Args are the collected strings; a #! handler rewrites them.
	Args *stack.Args
	// Rand serves the exec's randomness from Req.Rand or crypto/rand.
	Rand *randPool

	// Extended says why the plan is not what the kernel's own exec of
	// the same request would do ("binfmt rule qemu-aarch64", "emulation
	// root /x"): "" when it is. Lookups and handlers of uexec's own set
	// it; the first reason set is kept.
	Extended string

	// ExecFD is the file a binfmt_misc rule with O passes to its
	// interpreter (bprm->executable), as AT_EXECFD; nil without.
	ExecFD *vm.File
	// CredFromExecFD: the credentials come from ExecFD's file, not the
	// interpreter's (binfmt_misc C, bprm->execfd_creds).
	CredFromExecFD bool
	execFDDepth    int  // Depth at which ExecFD was set
	execAttr       Attr // ExecFD's attributes

	// next, when set, is the file the next CheckExec runs instead of
	// looking Path up: an interpreter a binfmt_misc rule with F opened
	// when it was registered. Its permission was checked then.
	next *os.File

	// relaid, when set, is the layout begin_new_exec leaves for a set-id
	// exec, which differs from the request's (see afterCreds).
	relaid *layoutParams

	files    []*vm.File  // every file opened for this exec, closed by Close
	filesBuf [2]*vm.File // files' first backing array: a program and its interpreter
	lastAttr Attr        // attributes of the file checkOpened accepted last
	emulHits []emulHit   // names found under the emulation root
}
