package main

import (
	"errors"
	"fmt"
	"io"
	"syscall"

	"github.com/uexec/uexec"
)

// `uexec run - [ARG]...` and `uexec plan -` exec a program read from
// standard input, as fexecve(3) of a sealed memfd holding it would
// (uexec.Image): AT_EXECFN /dev/fd/3, comm "memfd:stdin", /proc/PID/exe
// "/memfd:stdin (deleted)". argv[0] is "-" as given (-a changes it); the
// program's standard input is uexec's, read to its end.

// stdinName is the memfd's name: comm becomes "memfd:" + stdinName.
const stdinName = "stdin"

// readImage reads the program from stdin when PROGRAM is "-"; it returns
// the exit status of a failure, or 0.
func (o *options) readImage(stdin io.Reader, stderr io.Writer) int {
	if o.argv[0] != "-" {
		return 0
	}
	if o.once {
		fmt.Fprintf(stderr, "uexec run: --once cannot run a program from standard input (-): it would need the memfd at its number in uexec itself\nTry 'uexec help' for more information.\n")
		return exitUsage
	}
	// The program gets descriptors 0, 1 and 2; the memfd comes next.
	im, err := uexec.NewImage(stdin, stdinName, 3)
	if err != nil {
		// The errno alone, with what failed: the image package's
		// wording names memfds and copy_file_range.
		var errno syscall.Errno
		if errors.As(err, &errno) {
			fmt.Fprintf(stderr, "uexec: -: reading the program from standard input: %v (%s)\n", errno, errnoName(errno))
		} else {
			fmt.Fprintf(stderr, "uexec: -: %v\n", err)
		}
		return exitUsage
	}
	o.image = im
	return 0
}
