package script

import (
	"fmt"

	"github.com/uexec/uexec/execsw"
	"golang.org/x/sys/unix"
)

// BufSize is how much of a file the parser examines (BINPRM_BUF_SIZE).
const BufSize = 256

// errNoMagic is the answer for every file that is not a script: made once,
// since the switch offers every exec to this handler first.
var errNoMagic = fmt.Errorf("no #! at the start: %w", unix.ENOEXEC)

// Parse parses the #! line at the start of buf as Linux's load_script does.
// Only the first BufSize bytes count; a shorter buf is padded with zeros.
//
//   - buf must start with "#!", else ENOEXEC.
//   - The line ends at the first '\n'. Without one, a line that is all
//     blanks, or whose interpreter name runs to the end of the buffer with
//     no space, tab or NUL after it (it may be truncated), is ENOEXEC;
//     otherwise the line ends before the last byte.
//   - Trailing spaces and tabs are dropped; leading ones are skipped.
//   - The interpreter name ends at a space, tab or NUL; no name is ENOEXEC.
//     Any other byte, a CR included, is part of the name.
//   - After the name and the blanks that follow it, the rest of the line up
//     to a NUL is one argument, inner blanks kept.
//
// A buffer of "#!" then NUL bytes gives the interpreter "" without error,
// as in Linux, where opening that empty name then fails with EACCES.
func Parse(buf []byte) (interp, arg string, hasArg bool, err error) {
	var b [BufSize]byte
	copy(b[:], buf)
	if b[0] != '#' || b[1] != '!' {
		return "", "", false, errNoMagic
	}
	// Indices below mirror the kernel's pointers into bprm->buf.
	const bufEnd = BufSize - 1
	iEnd := -1
	for i, c := range b {
		if c == '\n' {
			iEnd = i
			break
		}
	}
	if iEnd < 0 {
		iEnd = nextNonBlank(&b, 2, bufEnd)
		if iEnd < 0 {
			return "", "", false, fmt.Errorf("#! line of blanks only: %w", unix.ENOEXEC)
		}
		if nextTerminator(&b, iEnd, bufEnd) < 0 {
			return "", "", false, fmt.Errorf("interpreter name longer than the %d-byte #! buffer: %w", BufSize, unix.ENOEXEC)
		}
		iEnd = bufEnd
	}
	for blank(b[iEnd-1]) {
		iEnd--
	}
	iName := nextNonBlank(&b, 2, iEnd)
	if iName < 0 || iName == iEnd {
		return "", "", false, fmt.Errorf("no interpreter name after #!: %w", unix.ENOEXEC)
	}
	iArg := -1
	iSep := nextTerminator(&b, iName, iEnd)
	if iSep >= 0 && b[iSep] != 0 {
		iArg = nextNonBlank(&b, iSep, iEnd)
	}
	// The kernel writes NULs at iEnd and, with an argument, at iSep, then
	// uses the strings up to their first NUL.
	b[iEnd] = 0
	if iArg >= 0 {
		b[iSep] = 0
		arg, hasArg = cstring(b[iArg:]), true
	}
	return cstring(b[iName:]), arg, hasArg, nil
}

func blank(c byte) bool { return c == ' ' || c == '\t' }

// nextNonBlank returns the index of the first byte in b[first:last+1] that
// is not a space or tab, or -1 (next_non_spacetab).
func nextNonBlank(b *[BufSize]byte, first, last int) int {
	for ; first <= last; first++ {
		if !blank(b[first]) {
			return first
		}
	}
	return -1
}

// nextTerminator returns the index of the first space, tab or NUL in
// b[first:last+1], or -1 (next_terminator).
func nextTerminator(b *[BufSize]byte, first, last int) int {
	for ; first <= last; first++ {
		if blank(b[first]) || b[first] == 0 {
			return first
		}
	}
	return -1
}

func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// Format is the #! handler for an execsw.Switch.
type Format struct{}

var _ execsw.Format = Format{}

// Name returns "script".
func (Format) Name() string { return "script" }

// HeaderSize returns BufSize: the parser looks at no more.
func (Format) HeaderSize() int { return BufSize }

// Native returns true: binfmt_script's plans are the kernel's own exec.
func (Format) Native() bool { return true }

// MakeCmds recognises a #! script in epp.Hdr, rewrites epp.Args to run the
// interpreter, and checks the interpreter through epp.Sw.CheckExec: the
// seed's exec_script_makecmds, in Linux's order of errors (load_script):
// ENOEXEC for a file that is not a script or a line without an interpreter
// name; ENOENT for a script reached through an O_CLOEXEC descriptor, whose
// /dev/fd name the interpreter could not open; E2BIG when the rewritten
// arguments do not fit; then the interpreter's own errors (open, nested
// scripts, ELOOP beyond 5 rewrites).
func (Format) MakeCmds(epp *execsw.Package) error {
	hdr := epp.Hdr
	if epp.HdrValid >= 0 && epp.HdrValid < len(hdr) {
		hdr = hdr[:epp.HdrValid]
	}
	interp, arg, hasArg, err := Parse(hdr)
	if err != nil {
		return &execsw.ExecError{Path: epp.Path, Reason: "#!", Err: err}
	}
	// From here on the file is a script: whatever fails ends the exec
	// (Linux search_binary_handler stops at any error but ENOEXEC; the
	// seed sets EXEC_DESTR once the header is consumed). FlagDestr is set
	// only after the nested CheckExec, so that the handlers still try the
	// interpreter in turn.
	if epp.Req != nil && epp.Req.File != nil && epp.Req.CloseOnExec && epp.Depth == 0 {
		// BINPRM_FLAGS_PATH_INACCESSIBLE: the /dev/fd/N name dies with the
		// descriptor at exec.
		epp.Flags |= execsw.FlagDestr
		return &execsw.ExecError{Path: epp.Path, Reason: "script reached through a close-on-exec descriptor", Err: unix.ENOENT}
	}
	if epp.Args == nil {
		epp.Flags |= execsw.FlagDestr
		return &execsw.ExecError{Path: epp.Path, Reason: "no arguments collected", Err: unix.EINVAL}
	}
	name := epp.InterpName()
	if err := epp.Args.Rewrite(interp, arg, hasArg, name); err != nil {
		epp.Flags |= execsw.FlagDestr
		return &execsw.ExecError{Path: epp.Path, Reason: "#! rewrite", Err: err}
	}
	epp.FakeArgs = []string{interp}
	if hasArg {
		epp.FakeArgs = append(epp.FakeArgs, arg)
	}
	epp.FakeArgs = append(epp.FakeArgs, name)
	epp.Chain = append(epp.Chain, execsw.Link{Format: "script", Path: epp.Path})
	epp.Flags |= execsw.FlagIndir | execsw.FlagHasArgl | execsw.FlagSkipArg
	epp.Depth++
	epp.Path = interp
	err = epp.Sw.CheckExec(epp)
	epp.Flags |= execsw.FlagDestr
	return err
}
