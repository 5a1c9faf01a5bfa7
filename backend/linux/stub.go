//go:build linux && amd64

package linux

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/internal/planstub"
)

// stubCache materialises one stub executable: as a file with its launcher
// beside it, or as a sealed memfd when no file can be executed.
type stubCache struct {
	elf func() []byte
	// launcher, when set, makes the launcher of the cached file (see
	// planstub.Launcher), which filePath returns instead: the stub exec'd
	// as an interpreter makes no copy of itself, so it maps nothing
	// writable and executable (a tree runs under MDWE); it is no faster
	// (the kernel opens a second file: measured, README).
	launcher func(interp string) []byte
	// fileFirst prefers the cached file to the memfd: an exec through
	// /proc/PID/fd/N costs about 70 µs more here (measured).
	fileFirst bool
	mu        sync.Mutex
	memfd     int    // -1 until made; kept open for the life of the process
	memPath   string // /proc/PID/fd/N of memfd
	memBad    bool   // executing the memfd failed: use the file
	file      string // the cached file, once verified
	launch    string // its launcher beside it, once verified
	launchBad bool   // executing the launcher failed (ENOEXEC): use the file
}

// planStub is the stub that runs a plan (internal/planstub).
var planStub = &stubCache{elf: planstub.ELF, launcher: planstub.Launcher, memfd: -1, fileFirst: true}

// path returns a path that execve(2) runs as the stub: the cached file
// or its launcher (fileFirst), or a sealed memfd of this process named
// through /proc/PID/fd, which works for the processes that see this
// process's /proc; the cached file when memfds cannot be created
// executable.
func (stubs *stubCache) path() (string, error) {
	if stubs.fileFirst {
		if p, err := stubs.filePath(); err == nil {
			return p, nil
		}
	}
	stubs.mu.Lock()
	bad := stubs.memBad
	stubs.mu.Unlock()
	var merr error
	if !bad {
		p, err := stubs.makeMemfd()
		if err == nil {
			return p, nil
		}
		merr = err
	}
	p, err := stubs.filePath()
	if err != nil && merr != nil {
		// Both ways failed: say why the memfd did (a sandbox refusing
		// memfd_create), not only why no directory would take the file.
		err = fmt.Errorf("%w; %w", merr, err)
	}
	return p, err
}

// stubMemfd creates the memfd once.
func (stubs *stubCache) makeMemfd() (string, error) {
	stubs.mu.Lock()
	defer stubs.mu.Unlock()
	if stubs.memfd >= 0 {
		return stubs.memPath, nil
	}
	const name = "uexec-stub"
	// MFD_EXEC is needed where vm.memfd_noexec is 1; kernels before 6.3
	// reject the flag.
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING|unix.MFD_EXEC)
	if err == unix.EINVAL {
		fd, err = unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	}
	if err != nil {
		stubs.memBad = true
		return "", os.NewSyscallError("memfd_create", err)
	}
	fail := func(call string, err error) (string, error) {
		unix.Close(fd)
		stubs.memBad = true
		return "", os.NewSyscallError(call, err)
	}
	b := stubs.elf()
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err != nil {
			return fail("write", err)
		}
		b = b[n:]
	}
	// Nobody, not even we, may change the stub from now on.
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS,
		unix.F_SEAL_WRITE|unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_SEAL); err != nil {
		return fail("fcntl(F_ADD_SEALS)", err)
	}
	stubs.memfd = fd
	stubs.memPath = fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), fd)
	return stubs.memPath, nil
}

// refused reports whether err is the kernel refusing to execute path as
// the stub where the stub file itself would run: the memfd (a noexec
// policy), or the launcher (ENOEXEC: a kernel that loads no ELF without a
// PT_LOAD; 6.18 does). The file itself is used from then on.
func (stubs *stubCache) refused(path string, err error) bool {
	if err == nil {
		return false
	}
	stubs.mu.Lock()
	defer stubs.mu.Unlock()
	switch {
	case path == stubs.memPath && (errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOEXEC)):
		stubs.memBad = true
	case path == stubs.launch && path != "" && errors.Is(err, unix.ENOEXEC):
		stubs.launchBad = true
	default:
		return false
	}
	return true
}

// cachedFile materialises the stub as an executable file, once per
// process: $XDG_CACHE_HOME/uexec (or ~/.cache/uexec), else the temporary
// directory, named after the hash of its contents. An existing file is used
// only if it is a regular file owned by us, writable by nobody else, and
// holds exactly the stub's bytes; otherwise a fresh one is created with
// O_EXCL and renamed into place.
func (stubs *stubCache) cachedFile() (string, error) {
	stubs.mu.Lock()
	defer stubs.mu.Unlock()
	if stubs.file != "" {
		return stubs.file, nil
	}
	b := stubs.elf()
	sum := sha256.Sum256(b)
	name := "stub-" + hex.EncodeToString(sum[:8])
	var errs []error
	// The temporary directory only where the cache fails (made lazily:
	// this is on every cold start's way).
	for i := range 2 {
		var dir string
		if i == 0 {
			d, err := os.UserCacheDir()
			if err != nil {
				continue
			}
			dir = d + "/uexec"
		} else {
			dir = filepath.Join(os.TempDir(), "uexec-"+strconv.Itoa(os.Geteuid()))
		}
		p, err := stubFileIn(dir, name, b, false)
		if err == nil {
			stubs.file = p
			return p, nil
		}
		errs = append(errs, err)
	}
	return "", fmt.Errorf("materialising the stub: %w", errors.Join(errs...))
}

// filePath is the path of the cached file that an exec runs as the stub:
// its launcher where there is one, else the file itself.
func (stubs *stubCache) filePath() (string, error) {
	p, err := stubs.cachedFile()
	if err != nil || stubs.launcher == nil {
		return p, err
	}
	stubs.mu.Lock()
	defer stubs.mu.Unlock()
	if stubs.launchBad {
		return p, nil
	}
	if stubs.launch == "" {
		b := stubs.launcher(p)
		sum := sha256.Sum256(b)
		l, err := stubFileIn(filepath.Dir(p), "launch-"+hex.EncodeToString(sum[:8]), b, true)
		if err != nil {
			// The file itself runs the stub as well, copying itself.
			return p, nil
		}
		stubs.launch = l
	}
	return stubs.launch, nil
}

// isLauncher reports whether path is the launcher filePath returned.
func (stubs *stubCache) isLauncher(path string) bool {
	stubs.mu.Lock()
	defer stubs.mu.Unlock()
	return stubs.launch != "" && path == stubs.launch
}

// stubFileIn returns the path of a file name in dir holding exactly want,
// made there if need be: dir private to us (made if missing; dirChecked:
// known to be so), the file ours, writable by nobody else, executable
// here.
func stubFileIn(dir, name string, want []byte, dirChecked bool) (string, error) {
	if !dirChecked {
		if err := checkOwned(dir, true); err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				return "", err
			}
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return "", err
			}
			if err := checkOwned(dir, true); err != nil {
				return "", err
			}
		}
	}
	p := dir + "/" + name
	if err := verifyStub(p, want); err == nil {
		return p, executable(p)
	}
	f, err := os.CreateTemp(dir, name+".tmp*") // O_EXCL
	if err != nil {
		return "", err
	}
	tmp := f.Name()
	_, err = f.Write(want)
	if err == nil {
		err = f.Chmod(0o555)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
		return "", err
	}
	if err := verifyStub(p, want); err != nil {
		return "", err
	}
	return p, executable(p)
}

// executable reports an error if this process may not execute the file
// at p: a directory on a noexec mount (a hardened /home or /tmp) holds the
// stub, but execve refuses it there; the next place is tried instead.
func executable(p string) error {
	if err := unix.Faccessat(unix.AT_FDCWD, p, unix.X_OK, unix.AT_EACCESS); err != nil {
		return fmt.Errorf("%s cannot be executed here (a noexec mount?): %w", p, err)
	}
	return nil
}

// checkOwned reports an error unless path is ours and writable by nobody
// else (a directory may be, if it is sticky).
func checkOwned(path string, dir bool) error {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: path, Err: err}
	}
	return ownedStat(path, &st, dir)
}

// ownedStat is checkOwned of path whose lstat is st.
func ownedStat(path string, st *unix.Stat_t, dir bool) error {
	kind := uint32(unix.S_IFREG)
	if dir {
		kind = unix.S_IFDIR
	}
	if st.Mode&unix.S_IFMT != kind || st.Uid != uint32(os.Geteuid()) || st.Mode&0o022 != 0 || st.Mode&0o100 == 0 {
		return fmt.Errorf("%s: mode %o owner %d: not a private %s: %w", path, st.Mode, st.Uid,
			map[bool]string{true: "directory", false: "file"}[dir], unix.EPERM)
	}
	return nil
}

// verifyStub reports an error unless p is a file of ours, writable by
// nobody else, that holds exactly want: checked on the open file (no
// symbolic link followed), in one read.
func verifyStub(p string, want []byte) error {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: p, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &os.PathError{Op: "fstat", Path: p, Err: err}
	}
	if err := ownedStat(p, &st, false); err != nil {
		return err
	}
	got := make([]byte, len(want)+1)
	n, err := unix.Pread(fd, got, 0)
	if err != nil || !bytes.Equal(got[:n], want) {
		return fmt.Errorf("%s: not the stub: %w", p, unix.EEXIST)
	}
	return nil
}

// planFile is an unnamed file (O_TMPFILE) beside the cached stub, mode
// 0555, for a copy of the stub with its plan: r is open for reading (to
// hand over and exec), w for writing until write closes it (an exec of a
// file open for writing is ETXTBSY).
// planFile is a copy of the stub being made, to which a plan is appended
// (write); stubDone once the stub's bytes are in it (writeStub).
type planFile struct {
	r, w     *os.File
	stubDone bool
}

func (stubs *stubCache) planFile() (*planFile, error) {
	p, err := stubs.cachedFile()
	if err != nil {
		// No place where the stub could be executed (noexec mounts):
		// an executable memfd, which an exec costs more and which a
		// sandbox's path rules (Landlock) do not judge.
		fd, merr := unix.MemfdCreate("uexec-plan", unix.MFD_CLOEXEC|unix.MFD_EXEC)
		if merr == unix.EINVAL {
			fd, merr = unix.MemfdCreate("uexec-plan", unix.MFD_CLOEXEC)
		}
		if merr != nil {
			return nil, fmt.Errorf("%w; %w", err, os.NewSyscallError("memfd_create", merr))
		}
		w := os.NewFile(uintptr(fd), "uexec-plan")
		// Nobody else may open it for writing through /proc.
		if err := unix.Fchmod(fd, 0o555); err != nil {
			w.Close()
			return nil, os.NewSyscallError("fchmod", err)
		}
		return newPlanFile(w)
	}
	dir := filepath.Dir(p)
	var w *os.File
	if fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o555); err == nil {
		w = os.NewFile(uintptr(fd), "uexec-plan")
		// Whatever the umask: a caller of another user execs it too.
		if err := unix.Fchmod(fd, 0o555); err != nil {
			w.Close()
			return nil, os.NewSyscallError("fchmod", err)
		}
	} else {
		// A filesystem without O_TMPFILE: a named file, unlinked at once.
		f, cerr := os.CreateTemp(dir, "plan-*")
		if cerr != nil {
			return nil, fmt.Errorf("%s: %w", dir, errors.Join(os.NewSyscallError("open(O_TMPFILE)", err), cerr))
		}
		os.Remove(f.Name())
		if err := f.Chmod(0o555); err != nil {
			f.Close()
			return nil, err
		}
		w = f
	}
	return newPlanFile(w)
}

// newPlanFile is the planFile whose writing descriptor is w.
func newPlanFile(w *os.File) (*planFile, error) {
	r, err := reopenRead(int(w.Fd()))
	if err != nil {
		w.Close()
		return nil, err
	}
	return &planFile{r: r, w: w}, nil
}

// reopenRead opens the file of descriptor fd again, read-only.
func reopenRead(fd int) (*os.File, error) {
	name := "/proc/self/fd/" + strconv.Itoa(fd)
	r, err := unix.Open(name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	return os.NewFile(uintptr(r), "uexec-plan"), nil
}

// write writes the stub and, at planstub.PlanOffset (a hole between), its
// plan, and closes the writing descriptor.
func (pf *planFile) write(stub, plan []byte) error {
	if err := pf.writeStub(stub); err != nil {
		return err
	}
	if err := pwriteAll(int(pf.w.Fd()), plan, planstub.PlanOffset); err != nil {
		return err
	}
	err := pf.w.Close()
	pf.w = nil
	return err
}

// writeStub writes the stub's bytes, once: a tree writes them ahead of the
// exec that needs the copy (Tree.readyPlanFile).
func (pf *planFile) writeStub(stub []byte) error {
	if pf.stubDone {
		return nil
	}
	if err := pwriteAll(int(pf.w.Fd()), stub, 0); err != nil {
		return err
	}
	pf.stubDone = true
	return nil
}

func pwriteAll(fd int, b []byte, off int64) error {
	for done := 0; done < len(b); {
		n, err := unix.Pwrite(fd, b[done:], off+int64(done))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return os.NewSyscallError("pwrite", err)
		}
		done += n
	}
	return nil
}

func (pf *planFile) close() {
	if pf.w != nil {
		pf.w.Close()
	}
	pf.r.Close()
}
