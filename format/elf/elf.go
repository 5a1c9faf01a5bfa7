package elf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/execsw"
	"github.com/uexec/uexec/vm"
)

// Format is the ELF exec switch entry (Linux fs/binfmt_elf.c and its compat
// twin compat_binfmt_elf.c; the seed's exec_elf64_makecmds).
type Format struct {
	// No32 rejects ELF32 (i386) files with ENOEXEC, as a kernel without
	// IA-32 emulation (or booted with ia32_emulation=0) does.
	No32 bool
}

// Name returns "elf".
func (Format) Name() string { return "elf" }

// HeaderSize returns the size of an Elf64_Ehdr.
func (Format) HeaderSize() int { return HeaderSize }

// Native returns true: binfmt_elf's plans are the kernel's own exec.
func (Format) Native() bool { return true }

// MakeCmds recognises an ELF executable in epp.Hdr and plans its image and
// its interpreter's into epp (load_elf_binary). Errors before the point of
// no return wrap the errno Linux returns; after it they wrap ErrFatal.
func (f Format) MakeCmds(epp *execsw.Package) error {
	return f.makeCmds(epp, epp.OpenInterp)
}

// opener opens an interpreter as execsw.Package.OpenInterp does.
type opener func(path string) (*vm.File, error)

// exstack is Linux's EXSTACK_* state from PT_GNU_STACK.
type exstack int

const (
	exstackDefault exstack = iota // no PT_GNU_STACK
	exstackDisableX
	exstackEnableX
)

func (f Format) makeCmds(epp *execsw.Package, open opener) error {
	if epp.File == nil || epp.File.R == nil {
		return fmt.Errorf("elf: %s: no file: %w", epp.Path, unix.EBADF)
	}
	n := min(max(epp.HdrValid, 0), len(epp.Hdr))
	h, err := ParseHeader(epp.Hdr[:n])
	if err != nil {
		return withPath(err, epp.Path)
	}
	if h.Is32 && (f.No32 || epp.Req != nil && !epp.Machine().IA32()) {
		return &FormatError{Path: epp.Path, Reason: "ELF32 (i386) files are disabled (no IA-32 emulation)", Err: unix.ENOEXEC}
	}
	r := io.ReaderAt(epp.File.R)
	if len(epp.Head) > 0 {
		r = &headReader{head: epp.Head, r: epp.File.R}
	}
	progs, err := ReadProgs(r, h)
	if err != nil {
		return withPath(err, epp.Path)
	}

	// The first PT_INTERP names the interpreter; it is opened and its
	// header read before anything else is checked.
	var (
		interp  string
		ifile   *vm.File
		ihdrBuf []byte
	)
	for _, p := range progs {
		if p.Type != PT_INTERP {
			continue
		}
		if interp, err = readInterpPath(r, p); err != nil {
			return withPath(err, epp.Path)
		}
		if ifile, err = open(interp); err != nil {
			return fmt.Errorf("elf: %s: interpreter %q: %w", epp.Path, interp, err)
		}
		if ihdrBuf, err = readInterpHeader(ifile, h.EhdrSize()); err != nil {
			return withPath(err, interp)
		}
		break
	}

	stack := exstackDefault
	for _, p := range progs {
		if p.Type == PT_GNU_STACK { // the last one wins
			stack = exstackDisableX
			if p.Flags&PF_X != 0 {
				stack = exstackEnableX
			}
		}
	}

	var (
		ih     *Header
		iprogs []Prog
	)
	if ifile != nil {
		if ih, err = parseInterpHeader(ihdrBuf, h.Is32); err != nil {
			return withPath(err, interp)
		}
		if iprogs, err = ReadProgs(&headReader{head: ihdrBuf, r: ifile.R}, ih); err != nil {
			var fe *FormatError
			if errors.As(err, &fe) {
				fe.Err = unix.ELIBBAD
			}
			return withPath(err, interp)
		}
	}

	// Linux begin_new_exec: the point of no return. Nothing below may
	// return an ordinary errno.
	epp.Chain = append(epp.Chain, execsw.Link{Format: "elf", Path: epp.Path})
	if ifile != nil {
		epp.Chain = append(epp.Chain, execsw.Link{Format: "interp", Path: interp})
	}
	if h.Is32 {
		epp.Flags |= execsw.Flag32
	}
	rie := h.Is32 && stack == exstackDefault // x86 elf_read_implies_exec
	var random bool
	var rnd io.Reader
	if epp.Req != nil {
		random = !epp.NoRandom()
		rnd = epp.Req.Rand
	}
	if epp.Rand != nil {
		rnd = epp.Rand
	}
	l := newLoader(epp.Space, h.Is32, rie, random, rnd)
	l.stack = epp.StackRange()
	l.space.Stack = l.stack
	if epp.Req != nil {
		l.commitPages = epp.Machine().CommitPages
		l.alignLarge = epp.LargeAligned(epp.File)
	}
	defer func() { epp.Cmds = append(epp.Cmds, l.cmds...) }()

	m, err := l.loadMain(epp.File, h, progs, ifile != nil)
	if err != nil {
		return withPath(err, epp.Path)
	}
	info := execsw.ELFInfo{
		Phdr:            m.phdr,
		Phent:           uint64(h.PhdrSize()),
		Phnum:           uint64(h.Phnum),
		Entry:           vm.Addr(m.entry),
		Interp:          interp,
		StartCode:       vm.Addr(m.startCode),
		EndCode:         vm.Addr(m.endCode),
		StartData:       vm.Addr(m.startData),
		EndData:         vm.Addr(m.endData),
		StartBrk:        vm.Addr(m.startBrk),
		ExecStack:       stack == exstackEnableX || (stack == exstackDefault && rie),
		ReadImpliesExec: rie,
	}
	entry := m.entry
	if ifile != nil {
		if epp.Req != nil {
			l.alignLarge = epp.LargeAligned(ifile)
		}
		base, err := l.loadInterp(ifile, ih, iprogs, m.bias)
		if err != nil {
			epp.ELF = info
			return withPath(err, interp)
		}
		entry = base + ih.Entry // wraps as in Linux; checked below
		info.InterpBase = vm.Addr(base)
		info.InterpEntry = vm.Addr(entry)
	}
	// Without PT_LOAD (and without an interpreter) Linux 6.18 maps
	// nothing, yet the exec succeeds: load_bias 0, AT_PHDR 0, brk 0 (or
	// ELF_ET_DYN_BASE for ET_DYN), and the program faults at its entry.
	epp.ELF = info
	if entry >= l.taskSize { // BAD_ADDR(elf_entry)
		return &FormatError{Path: epp.Path, Reason: fmt.Sprintf("entry point %#x is beyond TASK_SIZE %#x", entry, l.taskSize), Err: ErrFatal}
	}
	epp.Entry = vm.Addr(entry)
	return nil
}

// readInterpPath reads the PT_INTERP string p describes: 2 to PATH_MAX
// bytes, NUL-terminated (ENOEXEC otherwise); a short read is EIO.
func readInterpPath(r io.ReaderAt, p Prog) (string, error) {
	if p.Filesz > PathMax || p.Filesz < 2 {
		return "", errorf(unix.ENOEXEC, fmt.Sprintf("PT_INTERP of %d bytes is not 2..%d", p.Filesz, PathMax))
	}
	if p.Off > math.MaxInt64 { // kernel_read: negative loff_t
		return "", errorf(unix.EINVAL, fmt.Sprintf("PT_INTERP offset %#x is negative as a file position", p.Off))
	}
	if p.Filesz > math.MaxInt64-p.Off { // rw_verify_area: pos + count overflows loff_t
		return "", errorf(unix.EINVAL, fmt.Sprintf("PT_INTERP at offset %#x + %d bytes is beyond any file position", p.Off, p.Filesz))
	}
	buf := make([]byte, p.Filesz)
	if n, err := r.ReadAt(buf, int64(p.Off)); n < len(buf) {
		reason := fmt.Sprintf("short read of PT_INTERP: %d of %d bytes at offset %#x", n, len(buf), p.Off)
		if err != nil && err != io.EOF {
			reason += " (" + err.Error() + ")"
		}
		return "", errorf(unix.EIO, reason)
	}
	if buf[len(buf)-1] != 0 {
		return "", errorf(unix.ENOEXEC, "PT_INTERP is not NUL-terminated")
	}
	return string(buf[:bytes.IndexByte(buf, 0)]), nil
}

// readInterpHeader reads an interpreter's ELF header: size bytes, the
// sizeof(struct elfhdr) of the program's class; a shorter file is EIO. It
// reads up to a page, which usually holds the program headers too.
func readInterpHeader(f *vm.File, size int) ([]byte, error) {
	buf := make([]byte, max(size, headRead))
	n, err := f.R.ReadAt(buf, 0)
	if n < size {
		reason := fmt.Sprintf("interpreter header: read %d of %d bytes", n, size)
		if err != nil && err != io.EOF {
			reason += " (" + err.Error() + ")"
		}
		return nil, errorf(unix.EIO, reason)
	}
	return buf[:n], nil
}

// headRead is how much of an interpreter's start readInterpHeader reads.
const headRead = 4096

// headReader serves reads that fall inside head, the bytes of the file's
// start already read, from memory, and the others from r.
type headReader struct {
	head []byte
	r    io.ReaderAt
}

func (h *headReader) ReadAt(b []byte, off int64) (int, error) {
	if off >= 0 && off <= int64(len(h.head)) && int64(len(b)) <= int64(len(h.head))-off {
		return copy(b, h.head[off:]), nil
	}
	return h.r.ReadAt(b, off)
}

// parseInterpHeader checks an interpreter's header as load_elf_binary does
// before the point of no return: the magic and the machine of the
// program's handler (ELIBBAD otherwise). Its e_type is checked later, in
// load_elf_interp, after the point of no return.
func parseInterpHeader(b []byte, is32 bool) (*Header, error) {
	var buf [HeaderSize]byte
	copy(buf[:], b)
	if !bytes.Equal(buf[:4], []byte(ELFMAG)) {
		return nil, errorf(unix.ELIBBAD, "interpreter is not an ELF file")
	}
	m := Machine(binary.LittleEndian.Uint16(buf[18:]))
	ok := m == EM_X86_64
	if is32 {
		ok = m == EM_386 || m == EM_486
	}
	if !ok {
		want := "EM_X86_64"
		if is32 {
			want = "EM_386 or EM_486"
		}
		return nil, errorf(unix.ELIBBAD, fmt.Sprintf("interpreter e_machine %v is not %s", m, want))
	}
	// The machine decides the layout: patch e_type so that ParseHeader
	// decodes whatever it is; the real type is restored below.
	typ := binary.LittleEndian.Uint16(buf[16:])
	binary.LittleEndian.PutUint16(buf[16:], uint16(ET_DYN))
	h, err := ParseHeader(buf[:])
	if err != nil {
		var fe *FormatError
		if errors.As(err, &fe) {
			fe.Err = unix.ELIBBAD
		}
		return nil, err
	}
	h.Type = Type(typ)
	return h, nil
}
