//go:build linux && amd64

package linux

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/execsw"
	"github.com/uexec/uexec/internal/sys"
)

// Linux limits on what execve copies (fs/exec.c, include/uapi/linux/binfmts.h).
const (
	maxArgStrlen = 131072     // MAX_ARG_STRLEN, including the NUL
	maxArgBytes  = 256 << 20  // more than any stack budget: E2BIG beyond
	maxArgCount  = 0x7fffffff // MAX_ARG_STRINGS
)

// callerMem reads a tracee's memory with process_vm_readv, a page at a
// time (so that a string ending just before an unmapped page is read), with
// the pages read so far kept for the strings that share them.
type callerMem struct {
	pid   int
	pages map[uint64][]byte
	bytes int
}

var (
	errFault    = fmt.Errorf("bad address in the caller: %w", unix.EFAULT)
	errLongArg  = fmt.Errorf("string of more than %d bytes: %w", maxArgStrlen, unix.E2BIG)
	errLongPath = fmt.Errorf("path of %d bytes or more: %w", pathMax, unix.ENAMETOOLONG)
)

func (m *callerMem) page(addr uint64) ([]byte, error) {
	base := addr &^ 4095
	if p, ok := m.pages[base]; ok {
		return p, nil
	}
	if m.bytes > maxArgBytes+maxArgStrlen {
		return nil, fmt.Errorf("arguments beyond %d bytes: %w", maxArgBytes, unix.E2BIG)
	}
	p := make([]byte, 4096)
	local := []unix.Iovec{{Base: &p[0], Len: 4096}}
	remote := []unix.RemoteIovec{{Base: uintptr(base), Len: 4096}}
	n, err := unix.ProcessVMReadv(m.pid, local, remote, 0)
	if err == unix.EPERM {
		return nil, errMayNotRead
	}
	if err != nil || n != 4096 {
		return nil, errFault
	}
	if m.pages == nil {
		m.pages = map[uint64][]byte{}
	}
	m.pages[base] = p
	m.bytes += 4096
	return p, nil
}

// errMayNotRead: this process may not read the caller's memory (a caller
// of another user, under Yama or a sandbox): its exec is not planned.
var errMayNotRead = fmt.Errorf("this process may not read the caller's memory: %w", unix.EPERM)

// cstring reads the NUL-terminated string at addr, of at most max bytes
// including the NUL; a longer one is errLong.
func (m *callerMem) cstring(addr uint64, max int, errLong error) (string, error) {
	if addr == 0 {
		return "", errFault
	}
	var out []byte
	for {
		p, err := m.page(addr)
		if err != nil {
			return "", err
		}
		off := addr & 4095
		chunk := p[off:]
		if i := bytes.IndexByte(chunk, 0); i >= 0 {
			if len(out)+i+1 > max {
				return "", errLong
			}
			if out == nil { // within one page: one copy
				return string(chunk[:i]), nil
			}
			return string(append(out, chunk[:i]...)), nil
		}
		out = append(out, chunk...)
		if len(out) >= max {
			return "", errLong
		}
		addr += uint64(len(chunk))
	}
}

func (m *callerMem) word(addr uint64) (uint64, error) {
	if off := addr & 4095; off <= 4096-8 {
		p, err := m.page(addr)
		if err != nil {
			return 0, err
		}
		return binary.LittleEndian.Uint64(p[off:]), nil
	}
	var b [8]byte // across two pages
	for i := range b {
		p, err := m.page(addr + uint64(i))
		if err != nil {
			return 0, err
		}
		b[i] = p[(addr+uint64(i))&4095]
	}
	return binary.LittleEndian.Uint64(b[:]), nil
}

// vector reads a NULL-terminated array of string pointers (argv, envp);
// a NULL array is an empty one, as Linux takes it.
func (m *callerMem) vector(addr uint64) ([]string, error) {
	if addr == 0 {
		return nil, nil
	}
	var ptrs []uint64
	for {
		p, err := m.word(addr + uint64(len(ptrs))*8)
		if err != nil {
			return nil, err
		}
		if p == 0 {
			break
		}
		if len(ptrs) >= maxArgCount || len(ptrs)*8 > maxArgBytes {
			return nil, fmt.Errorf("%d strings: %w", len(ptrs), unix.E2BIG)
		}
		ptrs = append(ptrs, p)
	}
	out := make([]string, len(ptrs))
	var long error
	for i, p := range ptrs {
		s, err := m.cstring(p, maxArgStrlen, errLongArg)
		if err == errLongArg {
			// E2BIG, with every string for the log as the call has
			// them (strace shows them so).
			long = err
			s, err = m.cstring(p, maxArgBytes, errLongArg)
		}
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, long
}

// caller is what an exec needs of the process making it.
type caller struct {
	tid, tgid, ppid int
	cred            execsw.Cred
	capEff          uint64
	capBnd, capAmb  uint64 // the bounding and ambient sets
	personality     uint64
	sigBlk          uint64 // the thread's signal mask (SigBlk)
	fdSize          int    // the size of its descriptor table (FDSize)
	filters         int    // its seccomp filters, the tree's own included (Seccomp_filters)
}

// Capability bits (include/uapi/linux/capability.h).
const (
	capSetgid    = 6
	capSetuid    = 7
	capSysPtrace = 19
)

// readCaller reads the credentials and ids of thread tid from
// /proc/TID/status.
func readCaller(tid int) (*caller, error) {
	b, err := sys.ReadFile("/proc/" + strconv.Itoa(tid) + "/status")
	if err != nil {
		return nil, err
	}
	c := &caller{tid: tid}
	ids := func(v string) (r, e, s, fs uint32, ok bool) {
		f := strings.Fields(v)
		if len(f) != 4 {
			return 0, 0, 0, 0, false
		}
		var n [4]uint32
		for i := range n {
			x, err := strconv.ParseUint(f[i], 10, 32)
			if err != nil {
				return 0, 0, 0, 0, false
			}
			n[i] = uint32(x)
		}
		return n[0], n[1], n[2], n[3], true
	}
	var haveUID, haveGID bool
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "Tgid":
			c.tgid, _ = strconv.Atoi(v)
		case "PPid":
			c.ppid, _ = strconv.Atoi(v)
		case "Uid":
			c.cred.UID, c.cred.EUID, c.cred.SUID, c.cred.FSUID, haveUID = ids(v)
		case "Gid":
			c.cred.GID, c.cred.EGID, c.cred.SGID, c.cred.FSGID, haveGID = ids(v)
		case "Groups":
			for _, g := range strings.Fields(v) {
				x, err := strconv.ParseUint(g, 10, 32)
				if err == nil {
					c.cred.Groups = append(c.cred.Groups, uint32(x))
				}
			}
		case "CapEff":
			c.capEff, _ = strconv.ParseUint(v, 16, 64)
		case "CapBnd":
			c.capBnd, _ = strconv.ParseUint(v, 16, 64)
		case "CapAmb":
			c.capAmb, _ = strconv.ParseUint(v, 16, 64)
		case "FDSize":
			c.fdSize, _ = strconv.Atoi(v)
		case "SigBlk":
			c.sigBlk, _ = strconv.ParseUint(v, 16, 64)
		case "Seccomp_filters":
			c.filters, _ = strconv.Atoi(v)
		case "NoNewPrivs":
			c.cred.NoNewPrivs = v == "1"
		}
	}
	if !haveUID || !haveGID || c.tgid == 0 {
		return nil, fmt.Errorf("/proc/%d/status: no ids: %w", tid, unix.ESRCH)
	}
	c.cred.CapDACOverride = c.capEff&(1<<unix.CAP_DAC_OVERRIDE) != 0
	c.cred.CapDACReadSearch = c.capEff&(1<<unix.CAP_DAC_READ_SEARCH) != 0
	// cap_mmap_addr checks the credentials the exec installs, not the
	// caller's.
	c.cred.CapSysRawio = c.effAfterExec()&(1<<unix.CAP_SYS_RAWIO) != 0
	return c, nil
}

// maySetID reports whether the caller, made to run setresuid and
// setresgid itself, can take any ids.
func (c *caller) maySetID() bool {
	eff := c.effAfterExec()
	return eff&(1<<capSetuid) != 0 && eff&(1<<capSetgid) != 0
}

// effAfterExec is the caller's effective capability set once it has exec'd
// the stub, which is not set-id and has no file capabilities: the bounding
// set for euid 0, else the ambient set (capabilities are recomputed at
// exec, whatever the caller held before).
func (c *caller) effAfterExec() uint64 {
	if c.cred.EUID == 0 {
		return c.capBnd
	}
	return c.capAmb
}

// stubCred is the caller's credentials once it has exec'd the stub: the
// filesystem ids are the effective ones again, and the capabilities those
// of effAfterExec.
func (c *caller) stubCred() execsw.Cred {
	cr := c.cred
	cr.FSUID, cr.FSGID = cr.EUID, cr.EGID
	eff := c.effAfterExec()
	cr.CapDACOverride = eff&(1<<unix.CAP_DAC_OVERRIDE) != 0
	cr.CapDACReadSearch = eff&(1<<unix.CAP_DAC_READ_SEARCH) != 0
	return cr
}

// maySetExe reports whether the stub, in the caller's place, may set
// /proc/PID/exe with prctl(PR_SET_MM_MAP)'s exe_fd: CAP_SYS_ADMIN or
// CAP_CHECKPOINT_RESTORE after the exec.
func (c *caller) maySetExe() bool {
	eff := c.effAfterExec()
	return eff&(1<<unix.CAP_SYS_ADMIN) != 0 || eff&(1<<unix.CAP_CHECKPOINT_RESTORE) != 0
}

// request builds the execsw.Request of an execve or execveat by c from its
// cwd, root, limits and personality.
func (c *caller) request(path string, argv, envp []string) (*execsw.Request, error) {
	proc := "/proc/" + strconv.Itoa(c.tid)
	dir, err := c.dir()
	if err != nil {
		return nil, err
	}
	root, err := os.Readlink(proc + "/root")
	if err != nil {
		return nil, err
	}
	req := &execsw.Request{Path: path, Argv: argv, Envp: envp, Dir: dir, Root: root, Cred: c.cred, Pid: c.tgid, Tid: c.tid}
	if req.RlimitStack, err = c.rlimit(unix.RLIMIT_STACK, "Max stack size"); err != nil {
		return nil, err
	}
	if req.RlimitData, err = c.rlimit(unix.RLIMIT_DATA, "Max data size"); err != nil {
		return nil, err
	}
	pb, err := sys.ReadFile(proc + "/personality")
	if err != nil {
		return nil, err
	}
	c.personality, _ = strconv.ParseUint(strings.TrimSpace(string(pb)), 16, 64)
	req.NoRandom = c.personality&sys.ADDR_NO_RANDOMIZE != 0 || !vaRandomized()
	req.Legacy = c.personality&sys.ADDR_COMPAT_LAYOUT != 0
	// Only a stub that keeps CAP_SETUID and CAP_SETGID in the caller's
	// place can give a set-id program its ids.
	req.Downgrade = os.Geteuid() != 0 || !c.maySetID()
	return req, nil
}

// dir is the caller's cwd as Request.Dir: its name, or procfs's link to it
// where it has none to resolve from: removed (its link reads "NAME
// (deleted)") or longer than PATH_MAX (ENAMETOOLONG). The link is the
// process's, not the thread's, when the thread shares the process's cwd:
// the stub may open the plan's files by name once it is the process's only
// thread, and the thread's directory in /proc is gone then.
func (c *caller) dir() (string, error) {
	link := "/proc/" + strconv.Itoa(c.tid) + "/cwd"
	dir, err := os.Readlink(link)
	if err == nil && !strings.HasSuffix(dir, " (deleted)") {
		return dir, nil
	}
	if err != nil && !errors.Is(err, unix.ENAMETOOLONG) {
		return "", err
	}
	var own, leader unix.Stat_t
	pl := "/proc/" + strconv.Itoa(c.tgid) + "/cwd"
	if unix.Stat(link, &own) == nil && unix.Stat(pl, &leader) == nil && own.Dev == leader.Dev && own.Ino == leader.Ino {
		return pl, nil
	}
	return "/proc/" + strconv.Itoa(c.tgid) + "/task/" + strconv.Itoa(c.tid) + "/cwd", nil
}

// rlimit returns the caller's soft limit res: with prlimit, or, when
// prlimit is refused (a caller of another user and no CAP_SYS_RESOURCE
// here), from the line named row of /proc/PID/limits.
func (c *caller) rlimit(res int, row string) (uint64, error) {
	var rl unix.Rlimit
	err := unix.Prlimit(c.tgid, res, nil, &rl)
	if err == nil {
		return rl.Cur, nil
	}
	if err != unix.EPERM {
		return 0, os.NewSyscallError("prlimit", err)
	}
	b, rerr := sys.ReadFile("/proc/" + strconv.Itoa(c.tgid) + "/limits")
	if rerr != nil {
		return 0, os.NewSyscallError("prlimit", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, row); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				break
			}
			if f[0] == "unlimited" {
				return unix.RLIM_INFINITY, nil
			}
			if v, perr := strconv.ParseUint(f[0], 10, 64); perr == nil {
				return v, nil
			}
			break
		}
	}
	return 0, fmt.Errorf("/proc/%d/limits: no %s: %w", c.tgid, row, unix.EPERM)
}

func vaRandomized() bool {
	v, err := sys.RandomizeVASpace()
	return err != nil || v != 0
}

// selfPath maps the caller's /proc/self and /proc/thread-self to its own
// pid: uexec resolves the path, and to uexec /proc/self is uexec.
func (c *caller) selfPath(p string) string {
	for _, pre := range []string{"/proc/self", "/proc/thread-self"} {
		if rest, ok := strings.CutPrefix(p, pre); ok && (rest == "" || rest[0] == '/') {
			to := "/proc/" + strconv.Itoa(c.tgid)
			if pre == "/proc/thread-self" {
				to += "/task/" + strconv.Itoa(c.tid)
			}
			return to + rest
		}
	}
	return p
}

// openFD opens the file behind the caller's descriptor fd for reading
// (O_PATH first, so that no device or FIFO is ever opened), and reports
// whether the descriptor is close-on-exec. A directory is returned as an
// O_PATH descriptor: the exec refuses it.
func (c *caller) openFD(fd int) (*os.File, bool, error) {
	name := "/proc/" + strconv.Itoa(c.tid) + "/fd/" + strconv.Itoa(fd)
	opath, err := unix.Open(name, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			err = unix.EBADF
		}
		return nil, false, err
	}
	cloexec := false
	if b, err := sys.ReadFile("/proc/" + strconv.Itoa(c.tid) + "/fdinfo/" + strconv.Itoa(fd)); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "flags:"); ok {
				fl, _ := strconv.ParseUint(strings.TrimSpace(v), 8, 64)
				cloexec = fl&unix.O_CLOEXEC != 0
			}
		}
	}
	f, err := reopen(opath, name)
	return f, cloexec, err
}

// reopen turns an O_PATH descriptor into a readable file when it is a
// regular file; otherwise it keeps the O_PATH one (whose type makes the
// exec fail with EACCES).
func reopen(opath int, name string) (*os.File, error) {
	var st unix.Stat_t
	if err := unix.Fstat(opath, &st); err != nil {
		unix.Close(opath)
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return os.NewFile(uintptr(opath), name), nil
	}
	fd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(opath), unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	unix.Close(opath)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}

// openAt opens path relative to the caller's directory descriptor dirfd
// (execveat), with execveat's AT_SYMLINK_NOFOLLOW.
func (c *caller) openAt(dirfd int, path string, nofollow bool) (*os.File, error) {
	dname := "/proc/" + strconv.Itoa(c.tid) + "/fd/" + strconv.Itoa(dirfd)
	d, err := unix.Open(dname, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			err = unix.EBADF
		}
		return nil, err
	}
	defer unix.Close(d)
	var st unix.Stat_t
	if err := unix.Fstat(d, &st); err != nil {
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil, unix.ENOTDIR
	}
	flags := unix.O_PATH | unix.O_CLOEXEC
	if nofollow {
		flags |= unix.O_NOFOLLOW
	}
	opath, err := unix.Openat(d, path, flags, 0)
	if err != nil {
		return nil, err
	}
	if nofollow {
		if err := unix.Fstat(opath, &st); err == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			unix.Close(opath)
			return nil, unix.ELOOP
		}
	}
	return reopen(opath, path)
}

// Access bits of may (include/linux/fs.h MAY_EXEC, MAY_READ).
const (
	mayX = 1
	mayR = 4
)

// mayAccess is generic_permission for the caller's credentials on a
// regular file or a directory (capabilities as the kernel counts them).
func mayAccess(c *execsw.Cred, st *unix.Stat_t, bit uint32) bool {
	dir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	if c.CapDACOverride {
		if bit == mayX && !dir {
			return st.Mode&0o111 != 0
		}
		return true
	}
	if c.CapDACReadSearch && (bit == mayR || dir && bit == mayX) {
		return true
	}
	mode := st.Mode
	switch {
	case st.Uid == c.FSUID:
		return (mode>>6)&bit != 0
	case c.FSGID == st.Gid || slicesContains(c.Groups, st.Gid):
		return (mode>>3)&bit != 0
	default:
		return mode&bit != 0
	}
}

func slicesContains(s []uint32, v uint32) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// mayOpen reports why the caller could not open the absolute path name
// for bit (mayR or mayX) with its own credentials, or nil: every directory
// on the way must be searchable, none a symlink (the name is resolved),
// and the file a regular file with the permission. When ino is not 0 the
// file must be dev and ino.
func (c *caller) mayOpen(name string, bit uint32, dev, ino uint64) error {
	if !filepath.IsAbs(name) || filepath.Clean(name) != name {
		return fmt.Errorf("%q is not a resolved absolute name", name)
	}
	// The stub opens the files with the credentials its exec leaves.
	cr := c.stubCred()
	// CAP_DAC_READ_SEARCH or CAP_DAC_OVERRIDE may search every directory
	// (generic_permission): only the file itself is left to check. (A
	// name changed since it was resolved is the stub's dev and inode
	// check's to catch, with or without this walk.)
	for d := filepath.Dir(name); !cr.CapDACReadSearch && !cr.CapDACOverride; d = filepath.Dir(d) {
		var st unix.Stat_t
		if err := unix.Lstat(d, &st); err != nil {
			return &os.PathError{Op: "lstat", Path: d, Err: err}
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return fmt.Errorf("%s: not a directory", d)
		}
		if !mayAccess(&cr, &st, mayX) {
			return fmt.Errorf("the caller cannot search %s", d)
		}
		if d == "/" {
			break
		}
	}
	var st unix.Stat_t
	if err := unix.Lstat(name, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: name, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("%s: not a regular file", name)
	}
	if ino != 0 && (st.Dev != dev || st.Ino != ino) {
		return fmt.Errorf("%s is no longer the planned file", name)
	}
	if !mayAccess(&cr, &st, bit) {
		what := "read"
		if bit == mayX {
			what = "execute"
		}
		return fmt.Errorf("the caller cannot %s %s: uexec needs to", what, name)
	}
	return nil
}

// fewerFDs reports whether the caller has fewer than need descriptor
// numbers free below its RLIMIT_NOFILE, and how many it has: the
// descriptors handed over and those the stub opens must fit, where the
// kernel's exec needs none (a caller at its limit runs a program natively
// that the stub could not build). Every descriptor is below the table's
// size (FDSize), so /proc/PID/fd is read only when the limit is within
// need of that size.
func (c *caller) fewerFDs(need int) (int, bool) {
	var rl unix.Rlimit
	if err := unix.Prlimit(c.tgid, unix.RLIMIT_NOFILE, nil, &rl); err != nil {
		return 0, false // the redirect's own errors tell then
	}
	if rl.Cur >= uint64(c.fdSize)+uint64(need) {
		return need, false
	}
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(c.tgid) + "/fd")
	if err != nil {
		return 0, false
	}
	free := int(rl.Cur)
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil && uint64(n) < rl.Cur {
			free--
		}
	}
	return free, free < need
}

// sameMounts reports whether the caller sees this process's mounts: the
// same mount namespace and root.
func (c *caller) sameMounts(root string) bool {
	if root != "" && root != "/" {
		return false
	}
	var theirs unix.Stat_t
	ours, err := ownMountNS()
	if err != nil || unix.Stat("/proc/"+strconv.Itoa(c.tid)+"/ns/mnt", &theirs) != nil {
		return false
	}
	return theirs.Dev == ours.Dev && theirs.Ino == ours.Ino
}

// ownMountNS stats this process's mount namespace, once: uexec never
// changes it.
var ownMountNS = sync.OnceValues(func() (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Stat("/proc/self/ns/mnt", &st)
	return st, err
})

// readCall reads an intercepted exec's path, argv and envp from caller
// pid's memory. err is the path's error; argErr the first of argv's and
// envp's, which Linux reports only once the file is open (see planCall).
func readCall(pid int, pathPtr, argvPtr, envpPtr uint64) (path string, argv, envp []string, argErr, err error) {
	mem := &callerMem{pid: pid}
	path, err = mem.cstring(pathPtr, pathMax, errLongPath)
	if err != nil {
		return "", nil, nil, nil, err
	}
	argv, argErr = mem.vector(argvPtr)
	envp, envErr := mem.vector(envpPtr)
	if argErr == nil {
		argErr = envErr
	}
	return path, argv, envp, argErr, nil
}

// planCall plans req with sw. Linux opens the file before it counts the
// arguments: with a bad argument vector (argErr), an open error wins,
// else argErr is the result.
func planCall(sw *execsw.Switch, req *execsw.Request, argErr error) (*execsw.Plan, error) {
	if argErr != nil {
		req.Argv, req.Envp = nil, nil
		if p, err := sw.Execve(req); err != nil && isOpenErrno(errnoOf(err)) {
			argErr = err
		} else if err == nil {
			p.Close()
		}
		return nil, argErr
	}
	plan, err := sw.Execve(req)
	if err != nil {
		if plan != nil {
			plan.Close()
		}
		return nil, err
	}
	return plan, nil
}
