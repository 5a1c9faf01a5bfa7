package execsw

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/internal/kprobe"
	"github.com/uexec/uexec/vm"
)

// Linux limits on path lookup (include/uapi/linux/limits.h, fs/namei.c).
const (
	pathMax      = 4096 // PATH_MAX, including the NUL
	nameMax      = 255  // NAME_MAX
	maxSymlinks  = 40   // MAXSYMLINKS
	maxRewrites  = 5    // fs/exec.c exec_binprm: at most 5 interpreter rewrites
	statfsNoexec = 0x8  // ST_NOEXEC in statfs.f_flags
	statfsNosuid = 0x2  // ST_NOSUID
	readAhead    = 4096 // bytes of a file read with its header
)

// ExecError is the error of a failed exec: the errno Linux would return,
// the file it concerns and why.
type ExecError struct {
	Path   string
	Reason string
	Err    error // a syscall.Errno, or an error wrapping one
}

func (e *ExecError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("%s: %v", ShowName(e.Path), e.Err)
	}
	return fmt.Sprintf("%s: %s: %v", ShowName(e.Path), e.Reason, e.Err)
}

// ShowName is a file name as a message shows it: as it is, or quoted as a
// Go string where it holds a control character or is not UTF-8, which a
// terminal would otherwise act on (the CR that a #! line of a CRLF script
// ends its interpreter's name with returns to the start of the line).
func ShowName(name string) string {
	if !utf8.ValidString(name) || strings.ContainsFunc(name, unicode.IsControl) {
		return strconv.Quote(name)
	}
	return name
}

func (e *ExecError) Unwrap() error { return e.Err }

// ErrUnreadable is in the error (with EACCES) of a plan that failed where
// the kernel's exec would not: uexec may not read a file that the kernel
// maps without reading it (an execute-only program).
var ErrUnreadable = errors.New("uexec cannot read the file (the kernel would not need to)")

func execErr(path string, errno unix.Errno, format string, args ...any) error {
	return &ExecError{Path: path, Reason: fmt.Sprintf(format, args...), Err: errno}
}

// CheckExec is the seed's check_exec for epp.Path: resolve and open the
// file with the caller's credentials, refuse a sixth nested #! rewrite with
// ELOOP, read the header and try every handler in order.
//
// Preconditions: the switch is held as reader (Execve holds it); handlers
// call CheckExec recursively for an interpreter.
func (s *Switch) CheckExec(epp *Package) error {
	if err := epp.openExec(); err != nil {
		return err
	}
	if epp.ExecFD != nil && epp.Depth > epp.execFDDepth {
		// fs/exec.c exec_binprm: the interpreter that got the file as
		// AT_EXECFD must be the program; a further rewrite fails.
		return execErr(epp.Path, unix.ENOEXEC, "an interpreter rewritten again after a binfmt_misc rule passed the file as AT_EXECFD")
	}
	if epp.Depth > maxRewrites {
		return execErr(epp.Path, unix.ELOOP, "more than %d nested interpreters", maxRewrites)
	}
	return s.makeCmds(epp)
}

// makeCmds reads the header of epp.File and offers it to each handler (the
// loop of check_exec). ENOEXEC means "not mine, try the next"; any other
// error ends the search, as in Linux's search_binary_handler (NetBSD would
// keep trying and remember the first such error; Linux decides what the
// caller observes). A handler that set FlagDestr also ends it.
//
// Preconditions: s.mu held as reader.
func (s *Switch) makeCmds(epp *Package) error {
	// One read of a page costs what a read of the header does, and holds
	// what handlers read next (ELF program headers, PT_INTERP).
	buf := make([]byte, max(s.hdrsz, readAhead))
	n, err := epp.File.R.ReadAt(buf, 0)
	if n < len(buf) && err != nil && err != io.EOF {
		return &ExecError{Path: epp.Path, Reason: "read header", Err: unix.EIO}
	}
	epp.Hdr, epp.HdrValid, epp.Head = buf[:s.hdrsz], min(n, s.hdrsz), buf[:n]
	for _, e := range s.entries {
		epp.Esw = e
		cmds, chain := len(epp.Cmds), len(epp.Chain)
		err := e.Format.MakeCmds(epp)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.ENOEXEC) || epp.Flags&FlagDestr != 0 {
			return err
		}
		// A refusing handler leaves nothing behind for the next one.
		epp.Cmds, epp.Chain = epp.Cmds[:cmds], epp.Chain[:chain]
	}
	epp.Esw = nil
	return execErr(epp.Path, unix.ENOEXEC, "no handler recognises the file")
}

// openExec resolves epp.Path (or takes Req.File at depth 0) and opens it
// with Linux's do_open_execat checks, setting epp.File, epp.Attr and
// epp.Resolved.
func (epp *Package) openExec() error {
	var (
		f   *vm.File
		err error
	)
	switch {
	case epp.next != nil:
		file := epp.next
		epp.next = nil
		f, err = epp.adoptChecked(file)
		epp.Resolved = epp.Path
	case epp.Depth == 0 && epp.Req.File != nil:
		f, err = epp.adopt(epp.Req.File)
		epp.Resolved = epp.Path
	default:
		f, epp.Resolved, err = epp.open(epp.Path, epp.Depth == 0 && epp.Req.NoFollow)
	}
	if err != nil {
		return err
	}
	use := Direct
	if epp.Depth > 0 {
		use = Indirect
	}
	if err := epp.checkPolicies(f, epp.Path, epp.Resolved, epp.lastAttr, use); err != nil {
		return err
	}
	epp.File, epp.Attr = f, epp.lastAttr
	if use == Direct {
		epp.progAttr = epp.lastAttr
	}
	return nil
}

// adopt checks an already open file (execveat with AT_EMPTY_PATH).
func (epp *Package) adopt(file *os.File) (*vm.File, error) {
	dup, err := unix.FcntlInt(file.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, &ExecError{Path: epp.Path, Reason: "dup", Err: err}
	}
	fh := newExecFile(dup, epp.Path)
	vf, err := epp.checkOpened(fh, epp.Path, nil)
	if err != nil {
		fh.Close()
		return nil, err
	}
	return vf, nil
}

// adoptChecked takes an interpreter opened and checked when its
// binfmt_misc rule was registered (F): the kernel's file_clone_open checks
// no permission again, only that nobody writes the file
// (deny_write_access).
func (epp *Package) adoptChecked(file *os.File) (*vm.File, error) {
	dup, err := unix.FcntlInt(file.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, &ExecError{Path: epp.Path, Reason: "dup", Err: err}
	}
	fh := newExecFile(dup, epp.Path)
	var st unix.Stat_t
	if err := unix.Fstat(dup, &st); err != nil {
		fh.Close()
		return nil, &ExecError{Path: epp.Path, Reason: "fstat", Err: err}
	}
	if errno := TextBusy(dup); errno != 0 {
		fh.Close()
		return nil, execErr(epp.Path, errno, "file is open for writing")
	}
	epp.lastAttr = Attr{Mode: st.Mode, UID: st.Uid, GID: st.Gid, Dev: st.Dev, Ino: st.Ino, Size: st.Size,
		Mtime: st.Mtim, Ctime: st.Ctim}
	vf := fh.file(&st)
	epp.files = append(epp.files, vf)
	return vf, nil
}

// RunFile makes the next CheckExec run file, already opened and checked,
// instead of looking epp.Path up (a binfmt_misc interpreter opened with F).
// The file stays the caller's.
func (epp *Package) RunFile(file *os.File) { epp.next = file }

// PassExecutable gives the file being executed now to the interpreter
// that replaces it, as AT_EXECFD (binfmt_misc O; with creds, C, the new
// credentials come from it). It opens the file again, so that the
// program's descriptor has the open flags of the kernel's (O_RDONLY, its
// own offset). Call it before the interpreter's CheckExec, with Depth
// already counting the rewrite.
func (epp *Package) PassExecutable(creds bool) error {
	if epp.ExecFD != nil {
		// A rule before this one passed the file already: fs/exec.c
		// exec_binprm refuses every rewrite after that one
		// (have_execfd stays set), this one's too, once its
		// interpreter is open: CheckExec fails it with ENOEXEC.
		return nil
	}
	src, ok := epp.File.R.(interface{ Fd() uintptr })
	if !ok {
		return &ExecError{Path: epp.Path, Reason: "the file has no descriptor to pass as AT_EXECFD", Err: unix.EBADF}
	}
	fd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(int(src.Fd())), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &ExecError{Path: epp.Path, Reason: "opening the file again for AT_EXECFD", Err: err}
	}
	fh := newExecFile(fd, epp.File.Path)
	vf := fh.fileAs(epp.File)
	epp.files = append(epp.files, vf)
	epp.ExecFD, epp.execFDDepth, epp.execAttr = vf, epp.Depth, epp.Attr
	epp.CredFromExecFD = creds
	return nil
}

// open resolves name from the caller's root and cwd and opens the file it
// names for exec. With noFollow a final symlink is ELOOP.
func (epp *Package) open(name string, noFollow bool) (*vm.File, string, error) {
	if name == "" {
		// Only an interpreter gets here (Execve refuses an empty path
		// with ENOENT first): Linux's open_exec of "" walks to the
		// caller's cwd and refuses the directory (measured on 6.18).
		return nil, "", execErr(name, unix.EACCES, "an empty interpreter name names the current directory")
	}
	if len(name) >= pathMax {
		return nil, "", execErr(name, unix.ENAMETOOLONG, "path of %d bytes", len(name))
	}
	if emul, ok := epp.emulComps(name); ok {
		// The kernel's walk would not see the emulation root: no
		// openFast for the first attempt.
		resolved, st, err := epp.lookupFrom(name, noFollow, emul)
		if err == nil {
			return epp.openResolved(name, resolved, st, noFollow, true)
		}
		if !retryInRealRoot(err) {
			return nil, "", err
		}
	}
	if vf, resolved, ok, err := epp.openFast(name, noFollow); ok {
		return vf, resolved, err
	}
	resolved, st, err := epp.lookup(name, noFollow)
	if err != nil {
		return nil, "", err
	}
	return epp.openResolved(name, resolved, st, noFollow, false)
}

// openResolved opens the file lookup resolved name to, st its lstat; emul
// says that the lookup was made with the emulation root.
func (epp *Package) openResolved(name, resolved string, st *unix.Stat_t, noFollow, emul bool) (*vm.File, string, error) {
	if err := epp.checkType(name, st.Mode); err != nil {
		return nil, "", err
	}
	host := epp.hostPath(resolved)
	// O_NONBLOCK: should the file have been swapped for a FIFO since the
	// lookup, the open must not hang; checkOpened refuses it. O_NOFOLLOW
	// but for a final procfs magic link that lookup kept (every other link
	// is resolved by then).
	flags := unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOFOLLOW | unix.O_NONBLOCK
	if strings.HasPrefix(resolved, "/proc/") {
		flags &^= unix.O_NOFOLLOW
	}
	fd, err := unix.Open(host, flags, 0)
	if err != nil {
		if err == unix.EACCES {
			// The errno is the kernel's either way; whether the
			// kernel could have made the exec is what tells them
			// apart (Switch.KernelOnlyPlan).
			var sfs unix.Statfs_t
			if st.Mode&unix.S_IFMT == unix.S_IFREG && !mayExec(&epp.Req.Cred, st) {
				return nil, "", execErr(name, unix.EACCES, "no execute permission for uid %d", epp.Req.Cred.FSUID)
			}
			if unix.Statfs(host, &sfs) == nil && sfs.Flags&statfsNoexec != 0 {
				return nil, "", execErr(name, unix.EACCES, "on a noexec mount")
			}
			return nil, "", &ExecError{Path: name, Err: fmt.Errorf("%w: %w", ErrUnreadable, unix.EACCES)}
		}
		return nil, "", &ExecError{Path: name, Reason: "open", Err: err}
	}
	fh := newExecFile(fd, resolved)
	vf, err := epp.checkOpened(fh, name, nil)
	if err != nil {
		fh.Close()
		return nil, "", err
	}
	if emul {
		epp.emulFound(name, host, vf, noFollow)
	}
	return vf, resolved, nil
}

// openFast lets the kernel walk the path when its answer is the caller's:
// the caller may search every directory (CAP_DAC_OVERRIDE or
// CAP_DAC_READ_SEARCH), or is checked as this process is (SearchAsSelf),
// and shares uexec's root. Then lookup errors
// (ENOENT, ENOTDIR, ELOOP, ENAMETOOLONG) are the kernel's own, for a
// fraction of the system calls of lookup. The type is checked with statx
// before the open, so that no device or FIFO is ever opened (Linux's
// may_open refuses them before any driver sees an open); checkOpened checks
// the opened file again. ok is false when the slow walk must decide:
// another root, a caller that lacks the capabilities, or uexec itself was
// refused a search the caller may make.
func (epp *Package) openFast(name string, noFollow bool) (vf *vm.File, resolved string, ok bool, err error) {
	c := &epp.Req.Cred
	if !(c.CapDACOverride || c.CapDACReadSearch || epp.Req.SearchAsSelf) || (epp.Req.Root != "" && epp.Req.Root != "/") {
		return nil, "", false, nil
	}
	p := name
	if !strings.HasPrefix(p, "/") {
		p = strings.TrimSuffix(epp.Req.Dir, "/") + "/" + name
		if len(p) >= pathMax {
			return nil, "", false, nil
		}
	}
	statFlags, openFlags := unix.AT_STATX_SYNC_AS_STAT, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY
	if noFollow {
		statFlags |= unix.AT_SYMLINK_NOFOLLOW
		openFlags |= unix.O_NOFOLLOW
	}
	if epp.Req.Pid > 0 && epp.Req.Pid != os.Getpid() {
		return epp.openFastFor(name, p, noFollow)
	}
	var stx unix.Statx_t
	err = unix.Statx(unix.AT_FDCWD, p, statFlags, unix.STATX_TYPE|unix.STATX_MODE, &stx)
	switch {
	case err == unix.EACCES || err == unix.ENOSYS || err == unix.EPERM:
		return nil, "", false, nil
	case err != nil:
		return nil, "", true, &ExecError{Path: name, Reason: "lookup", Err: err}
	}
	return epp.openTyped(name, p, uint32(stx.Mode), func() (int, error) { return unix.Open(p, openFlags, 0) })
}

// openTyped ends openFast and openFastFor: host path p, of type mode, is
// refused unless it is a regular file (a final symlink: AT_SYMLINK_NOFOLLOW),
// opened with open (ok false, for lookup to decide, when that fails) and
// checked as opened.
func (epp *Package) openTyped(name, p string, mode uint32, open func() (int, error)) (vf *vm.File, resolved string, ok bool, err error) {
	if mode&unix.S_IFMT == unix.S_IFLNK {
		return nil, "", true, execErr(name, unix.ELOOP, "final component is a symbolic link (AT_SYMLINK_NOFOLLOW)")
	}
	if err := epp.checkType(name, mode); err != nil {
		return nil, "", true, err
	}
	fd, err := open()
	if err != nil {
		return nil, "", false, nil
	}
	fh := newExecFile(fd, p)
	if vf, err = epp.checkOpened(fh, name, nil); err != nil {
		fh.Close()
		return nil, "", true, err
	}
	return vf, p, true, nil
}

// openFastFor is openFast of host path p for another process's exec: the
// kernel's walk may not leave the mount it starts on (RESOLVE_NO_XDEV) nor
// follow a magic link (RESOLVE_NO_MAGICLINKS), since procfs's self, which
// /dev/fd and /dev/stdin lead to, is uexec there — its descriptor of that
// number, or ENOENT where it has none — and the walk of lookup, which knows
// whose it is, decides then (as for a path on another mount). The file is
// opened with O_PATH first (no device or FIFO is ever opened) and reopened
// for reading once it is known to be a regular file.
func (epp *Package) openFastFor(name, p string, noFollow bool) (vf *vm.File, resolved string, ok bool, err error) {
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV}
	if noFollow {
		how.Flags |= unix.O_NOFOLLOW
	}
	opath, err := unix.Openat2(unix.AT_FDCWD, p, &how)
	switch {
	case err == unix.EACCES || err == unix.ENOSYS || err == unix.EPERM || err == unix.ELOOP || err == unix.EXDEV:
		// ELOOP: a magic link, or too many links; EXDEV: another
		// mount (lookup says what).
		return nil, "", false, nil
	case err != nil:
		return nil, "", true, &ExecError{Path: name, Reason: "lookup", Err: err}
	}
	defer unix.Close(opath)
	var stx unix.Statx_t
	if err := unix.Statx(opath, "", unix.AT_EMPTY_PATH|unix.AT_STATX_SYNC_AS_STAT, unix.STATX_TYPE|unix.STATX_MODE, &stx); err != nil {
		return nil, "", false, nil
	}
	return epp.openTyped(name, p, uint32(stx.Mode), func() (int, error) {
		return unix.Open("/proc/self/fd/"+strconv.Itoa(opath), unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	})
}

// checkType refuses what is not a regular file, with may_open's errno:
// ELOOP for a symlink (reached only through a descriptor of one opened
// O_PATH|O_NOFOLLOW, or its /proc/self/fd link), EACCES for the rest.
func (epp *Package) checkType(name string, mode uint32) error {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return nil
	case unix.S_IFLNK:
		return execErr(name, unix.ELOOP, "a symbolic link")
	case unix.S_IFDIR:
		return execErr(name, unix.EACCES, "is a directory")
	default:
		return execErr(name, unix.EACCES, "not a regular file")
	}
}

// checkOpened applies the checks Linux makes on the opened file: regular
// file, execute permission for the caller, noexec mount, writers (ETXTBSY).
// st, when not nil, is the file's fstat. It takes ownership of fh on
// success.
func (epp *Package) checkOpened(fh *fdFile, name string, known *unix.Stat_t) (*vm.File, error) {
	var st unix.Stat_t
	if known != nil {
		st = *known
	} else if err := unix.Fstat(fh.fd, &st); err != nil {
		return nil, &ExecError{Path: name, Reason: "fstat", Err: err}
	}
	if err := epp.checkType(name, st.Mode); err != nil {
		return nil, err
	}
	if !mayExec(&epp.Req.Cred, &st) {
		return nil, execErr(name, unix.EACCES, "no execute permission for uid %d", epp.Req.Cred.FSUID)
	}
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fh.fd, &sfs); err != nil {
		return nil, &ExecError{Path: name, Reason: "fstatfs", Err: err}
	}
	if sfs.Flags&statfsNoexec != 0 {
		return nil, execErr(name, unix.EACCES, "on a noexec mount")
	}
	// Only the kernel knows whether someone holds the file open for
	// writing (deny_write_access).
	if errno := TextBusy(fh.fd); errno != 0 {
		reason := "kernel refuses exec"
		if errno == unix.ETXTBSY {
			reason = "file is open for writing"
		}
		return nil, execErr(name, errno, "%s", reason)
	}
	// The attributes count only for the file that becomes the program
	// (openExec copies them to epp.Attr), never for an interpreter.
	epp.lastAttr = Attr{
		Mode: st.Mode, UID: st.Uid, GID: st.Gid, Dev: st.Dev, Ino: st.Ino, Size: st.Size,
		NoSuid: sfs.Flags&statfsNosuid != 0, Mtime: st.Mtim, Ctime: st.Ctim,
	}
	if epp.lastAttr.NoSuid {
		epp.lastAttr.Mode &^= unix.S_ISUID | unix.S_ISGID
	}
	if epp.Req.Cred.UID != 0 {
		epp.lastAttr.Caps = readFileCaps(fh.fd)
	}
	vf := fh.file(&st)
	epp.files = append(epp.files, vf)
	return vf, nil
}

// readFileCaps reads the capabilities of the file open as fd; none when it
// has no security.capability attribute or one that is not a vfs_cap_data.
func readFileCaps(fd int) FileCaps {
	const (
		revisionMask = 0xff000000
		revision1    = 0x01000000 // 32 capabilities
		flagEff      = 0x1        // VFS_CAP_FLAGS_EFFECTIVE
	)
	var b [24]byte // vfs_ns_cap_data, the largest
	n, err := unix.Fgetxattr(fd, "security.capability", b[:])
	if err != nil || n < 12 {
		return FileCaps{}
	}
	le := binary.LittleEndian
	magic := le.Uint32(b[0:])
	fc := FileCaps{Present: true, Effective: magic&flagEff != 0,
		Permitted: uint64(le.Uint32(b[4:])), Inheritable: uint64(le.Uint32(b[8:]))}
	if magic&revisionMask != revision1 && n >= 20 {
		fc.Permitted |= uint64(le.Uint32(b[12:])) << 32
		fc.Inheritable |= uint64(le.Uint32(b[16:])) << 32
	}
	return fc
}

// TextBusy returns ETXTBSY when the file open as fd is open for writing
// anywhere, as Linux's deny_write_access finds it. A read lease is refused
// exactly when the inode is open for writing (inode_is_open_for_write, the
// counter deny_write_access tests), for two cheap system calls; where
// leases are not allowed (not the owner without CAP_LEASE, leases
// disabled) or a lease conflicts, an exec that cannot succeed asks the
// kernel itself (kprobe.ExecCheck).
func TextBusy(fd int) unix.Errno {
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETLEASE, unix.F_RDLCK); err == nil {
		unix.FcntlInt(uintptr(fd), unix.F_SETLEASE, unix.F_UNLCK)
		return 0
	}
	return kprobe.ExecCheck(fd)
}

// mayExec is generic_permission(MAY_EXEC) for a regular file: the owner,
// group or other class of the mode decides; a caller with CAP_DAC_OVERRIDE
// needs at least one execute bit.
func mayExec(c *Cred, st *unix.Stat_t) bool {
	if c.CapDACOverride {
		return st.Mode&0o111 != 0
	}
	return permits(c, st, 1)
}

// maySearch is MAY_EXEC on a directory.
func maySearch(c *Cred, st *unix.Stat_t) bool {
	if c.CapDACOverride || c.CapDACReadSearch {
		return true
	}
	return permits(c, st, 1)
}

func permits(c *Cred, st *unix.Stat_t, bit uint32) bool {
	mode := st.Mode
	switch {
	case st.Uid == c.FSUID:
		return (mode>>6)&bit != 0
	case inGroup(c, st.Gid):
		return (mode>>3)&bit != 0
	default:
		return mode&bit != 0
	}
}

func inGroup(c *Cred, gid uint32) bool {
	if gid == c.FSGID {
		return true
	}
	for _, g := range c.Groups {
		if g == gid {
			return true
		}
	}
	return false
}

// procDir reports whether the host directory dir is in a procfs, and
// whether it is a procfs root. A symbolic link in a procfs directory other
// than the root is one of procfs's magic links (/proc/PID/exe, cwd, root,
// fd/N); the root's (self, thread-self, mounts) are ordinary.
func procDir(dir string) (inProc, root bool) {
	var fs unix.Statfs_t
	if unix.Statfs(dir, &fs) != nil || fs.Type != unix.PROC_SUPER_MAGIC {
		return false, false
	}
	var d, parent unix.Stat_t
	if unix.Stat(dir, &d) != nil || unix.Stat(path.Dir(dir), &parent) != nil {
		return false, false
	}
	// The procfs root is the directory whose parent is on another
	// device.
	return true, d.Dev != parent.Dev
}

// sameFile reports whether host path p names the file st describes.
func sameFile(p string, st *unix.Stat_t) bool {
	var o unix.Stat_t
	return unix.Stat(p, &o) == nil && o.Dev == st.Dev && o.Ino == st.Ino
}

// selfLink is what the procfs root's link name (with target as this
// process reads it) says to the caller: its own pid for self, its thread
// for thread-self.
func (req *Request) selfLink(name, target string) string {
	tid := req.Tid
	if tid == 0 {
		tid = req.Pid
	}
	switch name {
	case "self":
		return strconv.Itoa(req.Pid)
	case "thread-self":
		return strconv.Itoa(req.Pid) + "/task/" + strconv.Itoa(tid)
	}
	return target
}

// ProcCwd reports whether dir is procfs's magic link to a process's cwd
// (/proc/self/cwd, /proc/PID/cwd, /proc/PID/task/TID/cwd): Request.Dir
// for a cwd that has no name to resolve from (removed, or longer than
// PATH_MAX).
func ProcCwd(dir string) bool {
	rest, ok := strings.CutPrefix(dir, "/proc/")
	if !ok {
		return false
	}
	rest, ok = strings.CutSuffix(rest, "/cwd")
	if !ok {
		return false
	}
	proc := func(s string) bool { _, err := strconv.ParseUint(s, 10, 31); return s == "self" || err == nil }
	f := strings.Split(rest, "/")
	switch len(f) {
	case 1:
		return proc(f[0])
	case 3:
		_, err := strconv.ParseUint(f[2], 10, 31)
		return proc(f[0]) && f[1] == "task" && err == nil
	}
	return false
}

// DirName is how a Request.Dir reads in a log: its name, or for procfs's
// link what the link says ("NAME (deleted)"; the link itself where the
// name is longer than PATH_MAX).
func DirName(dir string) string {
	if ProcCwd(dir) {
		if n, err := os.Readlink(dir); err == nil {
			return n
		}
	}
	return dir
}

// hostPath maps a path resolved inside the caller's root to the host.
func (epp *Package) hostPath(resolved string) string {
	root := epp.Req.Root
	if root == "" || root == "/" {
		return resolved
	}
	return root + resolved
}

// lookup walks name component by component from the caller's root or cwd,
// as Linux's path walk does: symlinks followed (at most 40), search
// permission checked on every directory with the caller's credentials.
// It returns the resolved path (from the caller's root) and the final
// file's lstat.
func (epp *Package) lookup(name string, noFollow bool) (string, *unix.Stat_t, error) {
	return epp.lookupFrom(name, noFollow, nil)
}

// lookupFrom is lookup with an emulation root: emul, when not nil, holds
// its components from the caller's root, and an absolute name (other than
// one starting "/../") and every absolute symlink start there (NetBSD
// namei_getstartdir and namei_follow with ni_erootdir set). A symlink
// starting "/../" leaves the emulation root for the rest of the walk. ".."
// stops only at the caller's root, as in NetBSD's lookup_once: ".." at the
// emulation root goes to its parent.
func (epp *Package) lookupFrom(name string, noFollow bool, emul []string) (string, *unix.Stat_t, error) {
	var comps []string // resolved components from the root
	// base: the first base components name a directory through procfs's
	// magic link to it (a cwd that was removed, or whose name is too
	// long; a magic link to a removed directory): ".." there is the
	// kernel's to take, from the directory itself.
	base := 0
	emulActive := emul != nil
	if emulActive && strings.HasPrefix(name, "/") && !strings.HasPrefix(name, "/../") {
		comps = append(comps, emul...)
	}
	if !strings.HasPrefix(name, "/") {
		cwd := epp.Req.Dir
		if r := epp.Req.Root; r != "" && r != "/" {
			cwd = strings.TrimPrefix(cwd, r)
		}
		for _, c := range strings.Split(cwd, "/") {
			if c != "" {
				comps = append(comps, c)
			}
		}
		if ProcCwd(cwd) {
			base = len(comps)
		}
	}
	links := 0
	todo := splitPath(name)
	trailingSlash := strings.HasSuffix(name, "/")
	var st unix.Stat_t
	dirOK := func() error {
		// The directory we are in must be searchable.
		p := epp.hostPath("/" + strings.Join(comps, "/"))
		var dst unix.Stat_t
		if err := unix.Stat(p, &dst); err != nil {
			return &ExecError{Path: name, Reason: "lookup", Err: err}
		}
		if dst.Mode&unix.S_IFMT != unix.S_IFDIR {
			return execErr(name, unix.ENOTDIR, "%s is not a directory", "/"+strings.Join(comps, "/"))
		}
		if !maySearch(&epp.Req.Cred, &dst) {
			return execErr(name, unix.EACCES, "no search permission on %s", "/"+strings.Join(comps, "/"))
		}
		return nil
	}
	// The starting directory itself must be searchable.
	if err := dirOK(); err != nil {
		return "", nil, err
	}
	if len(todo) == 0 {
		// "/" (or "//"): the file is the starting directory itself.
		if err := unix.Stat(epp.hostPath("/"+strings.Join(comps, "/")), &st); err != nil {
			return "", nil, &ExecError{Path: name, Reason: "lookup", Err: err}
		}
	}
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		last := len(todo) == 0
		switch c {
		case ".":
			if last {
				st = unix.Stat_t{}
				if err := unix.Stat(epp.hostPath("/"+strings.Join(comps, "/")), &st); err != nil {
					return "", nil, &ExecError{Path: name, Reason: "lookup", Err: err}
				}
			}
			continue
		case "..":
			switch {
			case len(comps) > base:
				comps = comps[:len(comps)-1]
			case base > 0:
				comps = append(comps, "..")
				base = len(comps)
			}
			if last {
				if err := unix.Stat(epp.hostPath("/"+strings.Join(comps, "/")), &st); err != nil {
					return "", nil, &ExecError{Path: name, Reason: "lookup", Err: err}
				}
			}
			continue
		}
		if len(c) > nameMax {
			return "", nil, execErr(name, unix.ENAMETOOLONG, "component of %d bytes", len(c))
		}
		// Joined as they are: ".." after a procfs link (base) is the
		// kernel's to take.
		p := epp.hostPath("/" + strings.Join(append(append([]string{}, comps...), c), "/"))
		if err := unix.Lstat(p, &st); err != nil {
			return "", nil, &ExecError{Path: name, Reason: "lookup", Err: err}
		}
		if st.Mode&unix.S_IFMT == unix.S_IFLNK && (!last || trailingSlash || !noFollow) {
			links++
			if links > maxSymlinks {
				return "", nil, execErr(name, unix.ELOOP, "more than %d symbolic links", maxSymlinks)
			}
			target, err := os.Readlink(p)
			if err != nil {
				return "", nil, &ExecError{Path: name, Reason: "readlink", Err: err}
			}
			if target == "" {
				return "", nil, execErr(name, unix.ENOENT, "empty symbolic link")
			}
			inProc, procRoot := procDir(path.Dir(p))
			if procRoot && epp.Req.Pid > 0 {
				// procfs's self and thread-self name the process that
				// reads them: here uexec, for a caller's path (/dev/fd/N
				// and /dev/stdin lead there).
				target = epp.Req.selfLink(path.Base(p), target)
			}
			if inProc && !procRoot {
				// fs/proc: a magic link (/proc/PID/exe, cwd, root,
				// fd/N) jumps to its file (nd_jump_link): the
				// directories on the way to it are not searched.
				if err := unix.Stat(p, &st); err != nil {
					return "", nil, &ExecError{Path: name, Reason: "lookup", Err: err}
				}
				comps = splitPath(p)
				base = len(comps)
				if strings.HasPrefix(target, "/") && !strings.HasSuffix(target, " (deleted)") && (epp.Req.Root == "" || epp.Req.Root == "/") &&
					(!last || sameFile(target, &st)) {
					// The file by its name; a final link whose name
					// now names another file (replaced since) is
					// opened through the link itself.
					comps, base = splitPath(target), 0
				}
				emulActive = false
				if !last {
					if err := dirOK(); err != nil {
						return "", nil, err
					}
				}
				continue
			}
			if strings.HasPrefix(target, "/") {
				comps, base = comps[:0], 0
				if emulActive && !strings.HasPrefix(target, "/../") {
					comps = append(comps, emul...)
				} else {
					emulActive = false
				}
				if err := dirOK(); err != nil {
					return "", nil, err
				}
			}
			todo = append(splitPath(target), todo...)
			if strings.HasSuffix(target, "/") && len(todo) == len(splitPath(target)) {
				trailingSlash = true
			}
			if len(todo) == 0 {
				// A link to "/": the root directory (the emulation
				// root's while it is in effect).
				if err := unix.Stat(epp.hostPath("/"+strings.Join(comps, "/")), &st); err != nil {
					return "", nil, &ExecError{Path: name, Reason: "lookup", Err: err}
				}
			}
			continue
		}
		if st.Mode&unix.S_IFMT == unix.S_IFLNK && last && noFollow {
			return "", nil, execErr(name, unix.ELOOP, "final component is a symbolic link (AT_SYMLINK_NOFOLLOW)")
		}
		comps = append(comps, c)
		if !last {
			if err := dirOK(); err != nil {
				return "", nil, err
			}
		}
	}
	if trailingSlash && st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return "", nil, execErr(name, unix.ENOTDIR, "trailing slash on a non-directory")
	}
	return "/" + strings.Join(comps, "/"), &st, nil
}

func splitPath(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" {
			out = append(out, c)
		}
	}
	return out
}

// OpenInterp opens an ELF interpreter named by PT_INTERP for epp, with the
// open errors Linux gives (open_exec): ENOENT, ENOTDIR, ELOOP, EACCES for a
// directory, a non-regular file, a noexec mount or a file without execute
// permission, ETXTBSY for a file open for writing. Relative paths resolve
// from the caller's cwd. The file is closed with the package.
func (epp *Package) OpenInterp(name string) (*vm.File, error) {
	f, resolved, err := epp.open(name, false)
	if err != nil {
		return nil, err
	}
	if err := epp.checkPolicies(f, name, resolved, epp.lastAttr, Indirect); err != nil {
		return nil, err
	}
	return f, nil
}
