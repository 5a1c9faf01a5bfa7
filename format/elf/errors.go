package elf

import (
	"errors"

	"github.com/uexec/uexec/execsw"
)

// ErrFatal marks a defect that Linux detects only after the point of no
// return: execve does not fail, the process is killed with SIGSEGV. It is
// execsw.ErrFatal, so that the planner turns it into a fatal plan.
var ErrFatal = execsw.ErrFatal

// FormatError is a rejected or unloadable ELF file: why, and the errno
// (or ErrFatal) that the exec returns.
type FormatError struct {
	Path   string // the file, when known
	Reason string // what is wrong: "program header table of 80000 bytes exceeds 65536"
	Err    error  // a unix.Errno or ErrFatal
}

func (e *FormatError) Error() string {
	s := "elf: "
	if e.Path != "" {
		s += execsw.ShowName(e.Path) + ": "
	}
	return s + e.Reason + ": " + e.Err.Error()
}

func (e *FormatError) Unwrap() error { return e.Err }

func errorf(errno error, reason string) *FormatError {
	return &FormatError{Reason: reason, Err: errno}
}

// withPath sets the path on a *FormatError that has none.
func withPath(err error, path string) error {
	var fe *FormatError
	if errors.As(err, &fe) && fe.Path == "" {
		fe.Path = path
	}
	return err
}
