package execsw

import (
	"github.com/uexec/uexec/stack"
	"github.com/uexec/uexec/vm"
)

// MM holds the mm_struct fields a new image sets: what /proc/PID/stat
// reports and prctl(PR_SET_MM_MAP) takes.
type MM struct {
	StartCode, EndCode vm.Addr
	StartData, EndData vm.Addr
	StartBrk, Brk      vm.Addr
	StartStack         vm.Addr
	ArgStart, ArgEnd   vm.Addr
	EnvStart, EnvEnd   vm.Addr
}

// NewCred is the credential outcome of an exec (Linux
// bprm_fill_uid/commit_creds; the seed's set-id block in execve1).
type NewCred struct {
	UID, EUID, SUID uint32
	GID, EGID, SGID uint32
	Secure          bool // AT_SECURE
	// SetID reports that the file's set-id bits changed the effective ids.
	SetID bool
	// PerClear reports that the file's set-id bits were honoured (the ids
	// may stay the same): the caller's PER_CLEAR_ON_SETID personality
	// flags (ADDR_NO_RANDOMIZE, ADDR_COMPAT_LAYOUT, READ_IMPLIES_EXEC,
	// MMAP_PAGE_ZERO) are cleared (fs/exec.c bprm_fill_uid).
	PerClear bool
	// Ignored says why set-id bits were present but not applied ("nosuid
	// mount", "no_new_privs"); "" when they were applied or absent.
	Ignored string
	// FileCaps reports that the file's capabilities (security.capability)
	// raise the caller's: the caller's real uid is not 0, and neither a
	// nosuid mount nor no_new_privs stops them. Only the kernel's exec
	// gives them.
	FileCaps bool
	// CapsIgnored says why the file's capabilities were present but not
	// applied ("nosuid mount", "no_new_privs").
	CapsIgnored string
	// Downgraded reports that the ids would change but whoever applies
	// the plan cannot change them (Request.Downgrade): only the kernel's
	// own exec of the file gives them.
	Downgraded bool
}

// Plan is a complete exec, decided before the point of no return: applying
// it cannot fail with an ordinary errno.
type Plan struct {
	// Fatal, when set, wraps ErrFatal: the exec goes past the point of no
	// return and the process is then killed with SIGSEGV, as Linux does.
	// Cmds hold the commands up to the failure; Stack is nil.
	Fatal error

	Chain  []Link
	Interp string // PT_INTERP path, "" for none
	Cmds   []vm.Cmd
	Entry  vm.Addr // where execution starts
	ELF    ELFInfo
	Compat bool // 32-bit image

	// Stack is the initial stack laid out from Image against
	// Layout.StackTop (Renamed lays it out again); a backend whose stack
	// top differs lays it out again with Image.
	Stack *stack.Layout
	Image stack.Image
	AuxIn stack.AuxInfo
	MM    MM
	Cred  NewCred
	Comm  string // basename of the path, at most 15 bytes

	// Layout is the planned address space: stack top, mmap base, and the
	// ranges the image takes.
	Layout vm.Layout
	// VDSO is where the vdso (with its vvar pages before it) goes in the
	// planned layout: [VvarStart, VDSOEnd).
	VvarStart, VDSOStart, VDSOEnd vm.Addr

	// StackVMA is the [stack] mapping the kernel leaves: the pages
	// holding the strings plus 128 KiB below them (setup_arg_pages
	// stack_expand), at most RLIMIT_STACK.
	StackVMA vm.Range

	// Extended says why this plan is not what the kernel's own exec of
	// the same request would do ("binfmt rule qemu-aarch64", "emulation
	// root /x"); "" when it is. A backend may hand an exec whose plan is
	// not extended to the kernel, never one that is.
	Extended string
	// ExecFD is the file the program gets as AT_EXECFD (binfmt_misc O):
	// installed at the lowest free descriptor after the close-on-exec
	// ones are closed, not close-on-exec itself. nil without.
	ExecFD *vm.File

	// Files are the files the vm commands map; Close releases them.
	Files []*vm.File
	// Esw is the switch entry that loaded the image.
	Esw *Entry

	// EmulRoot is the emulation root the exec was planned with (the
	// request's); "" for none.
	EmulRoot string

	// Program is the attributes of the file the caller named (the
	// script, not its interpreter, for a #! exec): what a policy keyed
	// on the program, such as segvguard, records at the image's death.
	Program Attr

	// KernelOnly, when set, says why only the kernel can make this exec:
	// uexec may not read a file that the caller may execute and the
	// kernel maps without reading (an execute-only program). The plan
	// then has no image; a backend hands the exec as requested to the
	// kernel, whose result (and errno) it is. See Switch.KernelOnlyPlan.
	KernelOnly string

	vdsoRegions []stack.VDSORegion
	rlimStack   uint64 // the soft RLIMIT_STACK the stack was laid out with
}

// JoinNotes joins the non-empty notes with "; ", as an exec log's note
// holds several reasons.
func JoinNotes(notes ...string) string {
	var out string
	for _, n := range notes {
		if n == "" {
			continue
		}
		if out != "" {
			out += "; "
		}
		out += n
	}
	return out
}
