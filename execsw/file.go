package execsw

import (
	"io"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/vm"
)

// fdFile is a file an exec opened: a bare descriptor read with pread. An
// *os.File would register every exec's files with the runtime's poller, for
// two system calls more per file and nothing gained: regular files never
// block. Plans own their files and close them (Plan.Close).
type fdFile struct {
	fd   int
	name string
	ef   *execFile // the allocation f lives in
}

// ReadAt implements io.ReaderAt.
func (f *fdFile) ReadAt(b []byte, off int64) (int, error) {
	if f.fd < 0 {
		return 0, os.ErrClosed
	}
	n := 0
	for n < len(b) {
		m, err := unix.Pread(f.fd, b[n:], off+int64(n))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, &os.PathError{Op: "pread", Path: f.name, Err: err}
		}
		if m == 0 {
			return n, io.EOF
		}
		n += m
	}
	return n, nil
}

// Fd returns the descriptor (backends pass it to the new process).
func (f *fdFile) Fd() uintptr { return uintptr(f.fd) }

// Close closes the descriptor; closing twice is harmless.
func (f *fdFile) Close() error {
	if f.fd < 0 {
		return nil
	}
	err := unix.Close(f.fd)
	f.fd = -1
	return err
}

// ResolvedName is the file's name with every symlink resolved, as the
// kernel prints it in /proc/PID/maps; "" once the file is closed.
func (f *fdFile) ResolvedName() string {
	if f.fd < 0 {
		return ""
	}
	n, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(f.fd))
	if err != nil {
		return ""
	}
	return n
}

// execFile is a vm.File and its descriptor in one allocation.
type execFile struct {
	vm.File
	fd fdFile
}

// newExecFile wraps an open descriptor; checkOpened turns it into the
// vm.File of the exec with file.
func newExecFile(fd int, name string) *fdFile {
	ef := &execFile{fd: fdFile{fd: fd, name: name}}
	ef.fd.ef = ef
	return &ef.fd
}

// file returns the vm.File of f, whose fstat after its open was st.
func (f *fdFile) file(st *unix.Stat_t) *vm.File {
	ef := f.ef
	ef.File = vm.File{Path: f.name, R: f, Size: st.Size, Dev: st.Dev, Ino: st.Ino,
		Opened: vm.Pin{Size: st.Size, Mtime: [2]int64{st.Mtim.Sec, st.Mtim.Nsec}, Ctime: [2]int64{st.Ctim.Sec, st.Ctim.Nsec}}}
	return &ef.File
}

// fileAs returns the vm.File of f, another open of the file of src.
func (f *fdFile) fileAs(src *vm.File) *vm.File {
	ef := f.ef
	ef.File = vm.File{Path: f.name, R: f, Size: src.Size, Dev: src.Dev, Ino: src.Ino, Opened: src.Opened}
	return &ef.File
}
