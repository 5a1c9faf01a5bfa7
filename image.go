package uexec

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	backend "github.com/uexec/uexec/backend/linux"
	"github.com/uexec/uexec/execsw"
)

// Image is a program held in memory (an ELF or a #! script), exec'd as
// fexecve(3) of a sealed memfd holding it: the kernel then names the exec
// /dev/fd/N (AT_EXECFN, the name a script's interpreter gets), comm is
// "memfd:NAME" and /proc/PID/exe "/memfd:NAME (deleted)".
type Image struct {
	// File is the sealed memfd, close-on-exec in this process.
	File *os.File
	// FD is its number in the program, Path "/dev/fd/FD".
	FD   int
	Path string
	// CloseOnExec: the program does not keep the descriptor. A #! script
	// must keep it (its interpreter opens Path; the kernel refuses a
	// script reached through an O_CLOEXEC descriptor with ENOENT); an ELF
	// need not, and does not.
	CloseOnExec bool

	keep []*os.File // inherited descriptors below FD, never closed
}

// NewImage reads r to its end into a sealed memfd named name. The program
// will see it as descriptor FD: the lowest from nfiles up (the number of
// descriptors given to the program) that this process does not pass on
// to it, the number memfd_create would return to such a caller.
func NewImage(r io.Reader, name string, nfiles int) (*Image, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING|unix.MFD_EXEC)
	if err == unix.EINVAL { // before Linux 6.3 MFD_EXEC is unknown (and implied)
		fd, err = unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	}
	if err != nil {
		return nil, os.NewSyscallError("memfd_create", err)
	}
	f := os.NewFile(uintptr(fd), "memfd:"+name)
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return nil, fmt.Errorf("uexec: reading the image: %w", err)
	}
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, unix.F_SEAL_WRITE|unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_SEAL); err != nil {
		f.Close()
		return nil, os.NewSyscallError("fcntl(F_ADD_SEALS)", err)
	}
	var hdr [2]byte
	f.ReadAt(hdr[:], 0)
	n := nfiles
	for inheritedFD(n) {
		n++
	}
	return &Image{File: f, FD: n, Path: "/dev/fd/" + strconv.Itoa(n), CloseOnExec: !bytes.Equal(hdr[:], []byte("#!"))}, nil
}

// Close closes the memfd.
func (im *Image) Close() error { return im.File.Close() }

// Request makes req the fexecve of the image.
func (im *Image) Request(req *execsw.Request) {
	req.Path, req.File, req.CloseOnExec = im.Path, im.File, im.CloseOnExec
}

// Files returns files with the image at its number (the numbers between
// keep what this process passes on), and the backend's description of the
// exec.
func (im *Image) Files(files []*os.File) ([]*os.File, *backend.Fexecve) {
	out := append([]*os.File{}, files...)
	for len(out) < im.FD {
		f := os.NewFile(uintptr(len(out)), "")
		im.keep = append(im.keep, f) // referenced, so that no finalizer closes it
		out = append(out, f)
	}
	out = append(out, im.File)
	return out, &backend.Fexecve{FD: im.FD, CloseOnExec: im.CloseOnExec}
}

// inheritedFD reports whether this process's descriptor fd is open without
// FD_CLOEXEC: a program started from here gets it, as from a kernel exec.
func inheritedFD(fd int) bool {
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	return err == nil && fl&unix.FD_CLOEXEC == 0
}
