package veriexec

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/sys/unix"
)

// maxFileSize bounds a signatures file held in memory (Parse's input).
const maxFileSize = 64 << 20

// Entry is one line of a signatures file.
type Entry struct {
	Path        string // absolute, as written (Load: symlinks resolved)
	Type        string // the digest's name, upper case ("SHA256")
	Fingerprint []byte
	Flags       Flags
	Line        int // where it was read, 0 if made otherwise

	digest *digest
}

// ParseError is a line of a signatures file Parse refuses.
type ParseError struct {
	File string
	Line int
	Msg  string
	Err  error // the errno veriexecctl gets: EOPNOTSUPP (type), EINVAL
}

func (e *ParseError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }
func (e *ParseError) Unwrap() error { return e.Err }

// Parse reads a signatures file (veriexec(5)); name is what errors call
// it. Entries keep their paths as written; Load resolves them.
func Parse(r io.Reader, name string) (*Table, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxFileSize+1))
	if err != nil {
		errno := unix.EIO // the read's own errno where it has one (EISDIR)
		errors.As(err, &errno)
		return nil, &ParseError{File: name, Msg: err.Error(), Err: errno}
	}
	if len(data) > maxFileSize {
		return nil, &ParseError{File: name, Msg: fmt.Sprintf("larger than %d bytes", maxFileSize), Err: unix.EFBIG}
	}
	t := newTable(name)
	line := 1
	for len(data) > 0 {
		// A logical line: physical lines joined at a backslash-newline
		// (veriexecctl_conf.l treats it as blank space).
		start := line
		var logical []byte
		for {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				logical, data = append(logical, data...), nil
				break
			}
			phys := data[:i]
			data = data[i+1:]
			line++
			if len(phys) > 0 && phys[len(phys)-1] == '\\' {
				logical = append(append(logical, phys[:len(phys)-1]...), ' ')
				continue
			}
			logical = append(logical, phys...)
			break
		}
		e, err := parseLine(string(logical))
		if err != nil {
			err.File, err.Line = name, start
			return nil, err
		}
		if e == nil {
			continue
		}
		e.Line = start
		if err := t.add(e); err != nil {
			return nil, &ParseError{File: name, Line: start, Msg: err.Error(), Err: unix.EEXIST}
		}
	}
	return t, nil
}

// parseLine parses one logical line; nil for a blank or comment line.
func parseLine(s string) (*Entry, *ParseError) {
	var fields []string
	for _, f := range strings.FieldsFunc(s, isBlank) {
		if strings.HasPrefix(f, "#") {
			break // a comment runs to the end of the line
		}
		fields = append(fields, f)
	}
	if len(fields) == 0 {
		return nil, nil
	}
	bad := func(errno unix.Errno, format string, a ...any) *ParseError {
		return &ParseError{Msg: fmt.Sprintf(format, a...), Err: errno}
	}
	path := fields[0]
	if !strings.HasPrefix(path, "/") {
		return nil, bad(unix.EINVAL, "path %q is not absolute", path)
	}
	if len(fields) < 3 {
		return nil, bad(unix.EINVAL, "want: path type fingerprint [flags]")
	}
	d := digestNamed(fields[1])
	if d == nil {
		return nil, bad(unix.EOPNOTSUPP, "unknown fingerprint type %q (SHA256, SHA384 or SHA512)", fields[1])
	}
	fp, err := hex.DecodeString(fields[2])
	if err != nil {
		return nil, bad(unix.EINVAL, "fingerprint is not hex: %v", err)
	}
	if len(fp) != d.size {
		return nil, bad(unix.EINVAL, "%s fingerprint of %d hex digits, want %d", d.name, len(fields[2]), 2*d.size)
	}
	flags := Direct // veriexecctl: no flags means direct
	if len(fields) > 3 {
		if flags, err = parseFlags(strings.Join(fields[3:], " ")); err != nil {
			return nil, bad(unix.EINVAL, "%v", err)
		}
	}
	return &Entry{Path: path, Type: d.name, Fingerprint: fp, Flags: flags, digest: d}, nil
}

func isBlank(r rune) bool { return r == ' ' || r == '\t' || r == '\r' || r == '\v' || r == '\f' }
