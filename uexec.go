package uexec

import (
	"os"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/execsw"
	"github.com/uexec/uexec/format/elf"
	"github.com/uexec/uexec/format/script"
	"github.com/uexec/uexec/internal/sys"
)

// NewSwitch returns an exec switch holding Linux's native handlers in
// Linux's order: #! scripts, then ELF.
func NewSwitch() *execsw.Switch {
	sw := &execsw.Switch{}
	// Errors are impossible: the switch is new and the entries distinct.
	_ = sw.Add(script.Format{}, execsw.PrioAny)
	_ = sw.Add(elf.Format{}, execsw.PrioAny)
	return sw
}

// SelfRequest describes an execve of path with argv and envp made by this
// process: its cwd, root, credentials, RLIMIT_STACK, RLIMIT_DATA,
// personality and no_new_privs.
func SelfRequest(path string, argv, envp []string) (*execsw.Request, error) {
	req := &execsw.Request{Path: path, Argv: argv, Envp: envp, Dir: selfDir(), Root: "/"}
	var err error
	if req.Cred, err = SelfCred(); err != nil {
		return nil, err
	}
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_STACK, &rl); err != nil {
		return nil, os.NewSyscallError("getrlimit", err)
	}
	req.RlimitStack = rl.Cur
	if err := unix.Getrlimit(unix.RLIMIT_DATA, &rl); err != nil {
		return nil, os.NewSyscallError("getrlimit", err)
	}
	req.RlimitData = rl.Cur
	persona, err := sys.Personality(sys.PersonalityQuery)
	req.NoRandom = !randomizedBy(persona, err)
	req.Legacy = err == nil && persona&sys.ADDR_COMPAT_LAYOUT != 0
	req.Downgrade = os.Geteuid() != 0
	req.SearchAsSelf = true // its own credentials
	return req, nil
}

// selfDir is this process's cwd as Request.Dir: its name, or, for a
// cwd that has none to resolve from (removed, or longer than PATH_MAX,
// where an exec still resolves relative paths from the directory itself),
// procfs's link to it.
//
// getcwd(2) itself, not os.Getwd, which stats "." and $PWD to prefer the
// latter's spelling (two system calls more per exec): an exec resolves
// from the directory, whose name getcwd gives.
func selfDir() string {
	dir, err := unix.Getwd()
	if err != nil || len(dir) >= unix.PathMax {
		return "/proc/self/cwd"
	}
	return dir
}

// Randomized reports whether an exec by this process would be randomised:
// kernel.randomize_va_space is not 0 and the personality lacks
// ADDR_NO_RANDOMIZE.
func Randomized() bool {
	return randomizedBy(sys.Personality(sys.PersonalityQuery))
}

// randomizedBy is Randomized for the personality persona (as read, with
// its error).
func randomizedBy(persona uint32, err error) bool {
	if v, err := sys.RandomizeVASpace(); err == nil && v == 0 {
		return false
	}
	return err != nil || persona&sys.ADDR_NO_RANDOMIZE == 0
}

// SelfCred returns this process's credentials as exec uses them.
func SelfCred() (execsw.Cred, error) {
	var c execsw.Cred
	ruid, euid, suid := getresuid()
	rgid, egid, sgid := getresgid()
	c.UID, c.EUID, c.SUID, c.FSUID = ruid, euid, suid, euid
	c.GID, c.EGID, c.SGID, c.FSGID = rgid, egid, sgid, egid
	groups, err := unix.Getgroups()
	if err != nil {
		return c, os.NewSyscallError("getgroups", err)
	}
	for _, g := range groups {
		c.Groups = append(c.Groups, uint32(g))
	}
	if nnp, err := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0); err == nil {
		c.NoNewPrivs = nnp == 1
	}
	capEff, fsuid, fsgid := procStatus()
	c.CapDACOverride = capEff&(1<<unix.CAP_DAC_OVERRIDE) != 0
	c.CapDACReadSearch = capEff&(1<<unix.CAP_DAC_READ_SEARCH) != 0
	c.CapSysRawio = rawioAfterExec(euid)
	if fsuid >= 0 {
		c.FSUID = uint32(fsuid)
	}
	if fsgid >= 0 {
		c.FSGID = uint32(fsgid)
	}
	return c, nil
}

// rawioAfterExec reports whether a program this process execs will hold
// CAP_SYS_RAWIO (cap_bprm_creds_from_file for a file without set-id bits
// or file capabilities): the bounding set for an effective uid 0, else the
// ambient set.
func rawioAfterExec(euid uint32) bool {
	if euid == 0 {
		r, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, unix.CAP_SYS_RAWIO, 0, 0, 0)
		return err == nil && r == 1
	}
	r, err := unix.PrctlRetInt(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_IS_SET, unix.CAP_SYS_RAWIO, 0, 0)
	return err == nil && r == 1
}

func getresuid() (r, e, s uint32) {
	a, b, c := unix.Getresuid()
	return uint32(a), uint32(b), uint32(c)
}

func getresgid() (r, e, s uint32) {
	a, b, c := unix.Getresgid()
	return uint32(a), uint32(b), uint32(c)
}

// procStatus returns the effective capabilities and the fs ids, with
// system calls rather than a read of /proc/self/status (a spawn's
// hottest cost otherwise); -1 when unknown.
func procStatus() (capEff uint64, fsuid, fsgid int64) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err == nil {
		capEff = uint64(data[0].Effective) | uint64(data[1].Effective)<<32
	}
	// setfsuid and setfsgid with an invalid id change nothing and return
	// the current one.
	u, _, _ := unix.RawSyscall(unix.SYS_SETFSUID, ^uintptr(0), 0, 0)
	g, _, _ := unix.RawSyscall(unix.SYS_SETFSGID, ^uintptr(0), 0, 0)
	return capEff, int64(uint32(u)), int64(uint32(g))
}
