package binfmt

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Limits of fs/binfmt_misc.c and include/uapi/linux/binfmts.h.
const (
	minRegister = 11   // the shortest register string create_entry takes
	maxRegister = 1920 // MAX_REGISTER_LENGTH
	// BufSize is how much of a file magic is matched against
	// (BINPRM_BUF_SIZE): offset plus magic length at most this.
	BufSize = 256
	nameMax = 255 // NAME_MAX: the rule is a file in binfmt_misc's directory
)

// Flags are a rule's flags letters.
type Flags uint8

const (
	// PreserveArgv0 (P): the interpreter gets the caller's argv[0] after
	// the file's path instead of losing it.
	PreserveArgv0 Flags = 1 << iota
	// OpenBinary (O): the file is passed to the interpreter open, as
	// AT_EXECFD, so that it may be executable but not readable.
	OpenBinary
	// Credentials (C): the credentials (set-id bits) come from the file,
	// not from the interpreter. It implies OpenBinary.
	Credentials
	// FixBinary (F): the interpreter is opened when the rule is
	// registered, and that file is used by every exec: it then works in
	// another root or mount namespace and after the path is gone.
	FixBinary
)

func (f Flags) String() string {
	var b strings.Builder
	for i, c := range "POCF" {
		if f&(1<<i) != 0 {
			b.WriteRune(c)
		}
	}
	return b.String()
}

// Rule is one binfmt_misc entry.
type Rule struct {
	Name string
	// Magic reports a type M rule (magic bytes at Offset under Mask);
	// otherwise type E (Ext, the name's extension).
	Magic  bool
	Offset int
	Bytes  []byte // the magic, decoded
	Mask   []byte // nil, or as long as Bytes
	Ext    string
	// Interpreter is the path of the interpreter, resolved when the rule
	// matches (or when it is registered, with FixBinary).
	Interpreter string
	Flags       Flags

	// Text is the register string the rule was parsed from.
	Text string
}

// ParseError is a rule the kernel would refuse to register.
type ParseError struct {
	Rule   string // the register string
	Source string // "FILE:LINE" for a rule read from a file, else ""
	Reason string
	Err    error // a unix.Errno
}

func (e *ParseError) Error() string {
	src := ""
	if e.Source != "" {
		src = e.Source + ": "
	}
	rule := e.Rule
	if len(rule) > maxQuoted {
		rule = rule[:maxQuoted] + "…" // a message, not the rule again
	}
	return fmt.Sprintf("%sbinfmt rule %s: %s: %v", src, strconv.Quote(rule), e.Reason, e.Err)
}

// maxQuoted bounds how much of a rule an error quotes.
const maxQuoted = 120

func (e *ParseError) Unwrap() error { return e.Err }

// Parse parses a register string, ':name:type:offset:magic:mask:interpreter:flags'
// (the first byte is the delimiter), as fs/binfmt_misc.c create_entry does,
// and refuses what it refuses, with EINVAL: a string shorter than 11 or
// longer than 1920 bytes (a single trailing newline counts and is
// allowed); a missing field; an empty name, "." or "..", or one with a
// '/'; a type other than M or E; a negative or non-decimal offset; an
// empty magic or a bad \x escape; a mask whose decoded length differs
// from the magic's; magic beyond the first 256 bytes; an empty extension
// or one with a '/'; an empty interpreter; any flag letter but P, O, C, F;
// anything after the flags. (A name longer than 255 bytes is Register's
// ENAMETOOLONG, as the register file's lookup comes after the parse.)
func Parse(s string) (*Rule, error) {
	r, reason, errno := parse(s)
	if errno != 0 {
		return nil, &ParseError{Rule: s, Reason: reason, Err: errno}
	}
	return r, nil
}

func parse(s string) (*Rule, string, unix.Errno) {
	count := len(s)
	if count < minRegister || count > maxRegister {
		return nil, fmt.Sprintf("%d bytes, not within %d to %d", count, minRegister, maxRegister), unix.EINVAL
	}
	// The kernel pads its copy with 8 delimiters; a NUL after them
	// stands for the end of its allocation, which strchr never reaches.
	del := s[0]
	buf := make([]byte, 0, count+9)
	buf = append(buf, s...)
	for range 8 {
		buf = append(buf, del)
	}
	buf = append(buf, 0)
	b := &cbuf{b: buf, del: del}

	r := &Rule{Text: s}
	p := 1
	name, p, ok := b.field(p)
	if !ok {
		return nil, "no name field", unix.EINVAL
	}
	if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
		return nil, fmt.Sprintf("bad name %q", name), unix.EINVAL
	}
	r.Name = name
	switch buf[p] {
	case 'E':
	case 'M':
		r.Magic = true
	default:
		return nil, fmt.Sprintf("type %q is neither M nor E", buf[p]), unix.EINVAL
	}
	p++
	if buf[p] != del {
		return nil, "the type is more than one letter", unix.EINVAL
	}
	p++
	if r.Magic {
		off, np, ok := b.field(p)
		if !ok {
			return nil, "no offset field", unix.EINVAL
		}
		if off != "" {
			v, ok := kstrtoint(off)
			if !ok || v < 0 {
				return nil, fmt.Sprintf("offset %q is not a decimal number of at least 0", off), unix.EINVAL
			}
			r.Offset = v
		}
		p = np
		magic, np, ok := b.scanarg(p)
		if !ok {
			return nil, "bad \\x escape in the magic", unix.EINVAL
		}
		if len(magic) == 0 || magic[0] == 0 {
			return nil, "empty magic", unix.EINVAL
		}
		p = np
		mask, np, ok := b.scanarg(p)
		if !ok {
			return nil, "bad \\x escape in the mask", unix.EINVAL
		}
		p = np
		r.Bytes = unescapeHex(magic)
		if len(mask) > 0 && mask[0] != 0 {
			r.Mask = unescapeHex(mask)
			if len(r.Mask) != len(r.Bytes) {
				return nil, fmt.Sprintf("mask of %d bytes for magic of %d", len(r.Mask), len(r.Bytes)), unix.EINVAL
			}
		}
		if len(r.Bytes) > BufSize || BufSize-len(r.Bytes) < r.Offset {
			return nil, fmt.Sprintf("offset %d and %d magic bytes reach beyond the first %d bytes", r.Offset, len(r.Bytes), BufSize), unix.EINVAL
		}
	} else {
		if _, p, ok = b.field(p); !ok {
			return nil, "no offset field", unix.EINVAL
		}
		ext, np, ok := b.field(p)
		if !ok {
			return nil, "no extension field", unix.EINVAL
		}
		if ext == "" || strings.Contains(ext, "/") {
			return nil, fmt.Sprintf("bad extension %q", ext), unix.EINVAL
		}
		r.Ext = ext
		if _, p, ok = b.field(np); !ok {
			return nil, "no mask field", unix.EINVAL
		}
	}
	interp, p, ok := b.field(p)
	if !ok {
		return nil, "no interpreter field", unix.EINVAL
	}
	if interp == "" {
		return nil, "empty interpreter", unix.EINVAL
	}
	r.Interpreter = interp
	for ; ; p++ {
		switch buf[p] {
		case 'P':
			r.Flags |= PreserveArgv0
			continue
		case 'O':
			r.Flags |= OpenBinary
			continue
		case 'C':
			r.Flags |= Credentials | OpenBinary
			continue
		case 'F':
			r.Flags |= FixBinary
			continue
		}
		break
	}
	if buf[p] == '\n' {
		p++
	}
	if p != count {
		return nil, fmt.Sprintf("%q after the flags (only P, O, C and F are flags)", trimPad(buf[p:], count-p)), unix.EINVAL
	}
	return r, "", 0
}

func trimPad(b []byte, n int) string {
	if n < 0 || n > len(b) {
		n = len(b)
	}
	return string(b[:n])
}

// cbuf is the kernel's padded copy of a register string, walked with C's
// string functions.
type cbuf struct {
	b   []byte
	del byte
}

// field returns the string from p to the next delimiter (strchr: a NUL
// first means there is none) and the index after that delimiter.
func (c *cbuf) field(p int) (string, int, bool) {
	for i := p; i < len(c.b); i++ {
		switch c.b[i] {
		case c.del:
			return string(c.b[p:i]), i + 1, true
		case 0:
			return "", 0, false
		}
	}
	return "", 0, false
}

// scanarg returns the bytes from p to the next delimiter, checking that
// every "\x" is followed by two hex digits (scanarg: NUL bytes do not end
// it), and the index after the delimiter.
func (c *cbuf) scanarg(p int) ([]byte, int, bool) {
	i := p
	for i < len(c.b) {
		ch := c.b[i]
		i++
		if ch == c.del {
			return c.b[p : i-1], i, true
		}
		if ch == '\\' && i < len(c.b) && c.b[i] == 'x' {
			i++
			for range 2 {
				if i >= len(c.b) || !isxdigit(c.b[i]) {
					return nil, 0, false
				}
				i++
			}
		}
	}
	return nil, 0, false
}

func isxdigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func hexval(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// unescapeHex is string_unescape_inplace(UNESCAPE_HEX) on a C string: it
// stops at the first NUL, decodes "\xH" and "\xHH", and keeps any other
// backslash and the byte after it.
func unescapeHex(s []byte) []byte {
	var out []byte
	for i := 0; i < len(s) && s[i] != 0; {
		if s[i] == '\\' && i+1 < len(s) && s[i+1] != 0 {
			i++
			if s[i] == 'x' && i+1 < len(s) && hexval(s[i+1]) >= 0 {
				v := hexval(s[i+1])
				i += 2
				if i < len(s) && hexval(s[i]) >= 0 {
					v = v<<4 | hexval(s[i])
					i++
				}
				out = append(out, byte(v))
				continue
			}
			out = append(out, '\\')
		}
		out = append(out, s[i])
		i++
	}
	return out
}

// kstrtoint is the kernel's kstrtoint(s, 10): an optional sign, decimal
// digits, an optional newline; within int.
func kstrtoint(s string) (int, bool) {
	neg := false
	switch {
	case strings.HasPrefix(s, "-"):
		neg, s = true, s[1:]
	case strings.HasPrefix(s, "+"):
		s = s[1:]
	}
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return 0, false
	}
	var v uint64
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
		if v > 1<<31 {
			return 0, false
		}
	}
	if neg {
		if v > 1<<31 {
			return 0, false
		}
		return -int(v), true
	}
	if v > 1<<31-1 {
		return 0, false
	}
	return int(v), true
}

// String returns the register string of the rule.
func (r *Rule) String() string { return r.Text }

// matches reports whether the rule recognises a file whose first bytes
// are hdr (BufSize of them, zero past the file's end) exec'd by the name
// interp (bprm->interp: the path as passed, or the previous interpreter's).
func (r *Rule) matches(hdr []byte, interp string) bool {
	if !r.Magic {
		i := strings.LastIndexByte(interp, '.')
		return i >= 0 && interp[i+1:] == r.Ext
	}
	var buf [BufSize]byte
	copy(buf[:], hdr)
	s := buf[r.Offset:]
	for j, m := range r.Bytes {
		d := s[j] ^ m
		if r.Mask != nil {
			d &= r.Mask[j]
		}
		if d != 0 {
			return false
		}
	}
	return true
}
