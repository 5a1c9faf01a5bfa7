package execsw

import (
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/internal/sys"
	"github.com/uexec/uexec/stack"
	"github.com/uexec/uexec/vm"
)

// Address-space geometry of a new x86-64 process (Linux arch/x86/mm/mmap.c,
// fs/exec.c, arch/x86/include/asm/elf.h).
const (
	stackTop64     = vm.TaskSize64 // STACK_TOP = TASK_SIZE_LOW
	stackTop32     = vm.TaskSize32
	stackRndMask   = 0x3fffff  // STACK_RND_MASK: 22 bits of pages (16 GiB)
	stackRndMask32 = 0x7ff     // compat: 11 bits of pages
	mmapRndBits    = 28        // vm.mmap_rnd_bits default
	mmapRndBits32  = 8         // vm.mmap_rnd_compat_bits default
	gapMin         = 128 << 20 // SIZE_128M: least room left for the stack
	stackGapRand   = 8192      // arch_align_stack: up to 8 KiB below the strings
	commLen        = 16        // TASK_COMM_LEN, including the NUL
)

// Execve plans req as Linux's execve would, up to the point of no return
// (the first half of the seed's execve1). On failure the error wraps the
// errno the caller's execve would return and nothing needs undoing; on
// success the caller owns the Plan and must Close it.
func (s *Switch) Execve(req *Request) (*Plan, error) {
	epp := &Package{Req: req, Sw: s, Path: req.Path}
	epp.files = epp.filesBuf[:0]
	src := req.Rand
	if src == nil {
		src = sys.Random
	}
	epp.Rand = newRandPool(src)
	p, err := s.execve(epp)
	if err != nil {
		epp.close()
		return nil, err
	}
	return p, nil
}

func (s *Switch) execve(epp *Package) (*Plan, error) {
	req := epp.Req
	// fs/exec.c getname: an empty name is ENOENT unless AT_EMPTY_PATH gave
	// a file; PATH_MAX includes the NUL.
	if req.File == nil {
		if req.Path == "" {
			return nil, execErr(req.Path, unix.ENOENT, "empty path")
		}
		if len(req.Path) >= pathMax {
			return nil, execErr(req.Path, unix.ENAMETOOLONG, "path of %d bytes", len(req.Path))
		}
	}
	// do_open_execat comes before the arguments are looked at.
	if err := epp.openExec(); err != nil {
		return nil, err
	}
	args, err := stack.NewArgs(req.Argv, req.Envp, req.Path, req.RlimitStack)
	if err != nil {
		return nil, &ExecError{Path: req.Path, Err: err}
	}
	epp.Args = args
	compatHint := false
	space, err := newLayout(epp, compatHint)
	if err != nil {
		return nil, err
	}
	epp.Space = space

	err = s.tryWithAutoload(epp)
	if (err == nil || errors.Is(err, ErrFatal)) && epp.Flags&Flag32 != 0 && epp.Space.TaskSize != vm.TaskSize32 {
		// The handler found a 32-bit image: the whole geometry is the
		// compat one. Plan again on a compat layout, even when the
		// native layout's plan failed (it may fail there only).
		return s.replanCompat(epp)
	}
	if err != nil {
		if errors.Is(err, ErrFatal) {
			return fatalPlan(epp, err), nil
		}
		return nil, err
	}
	if p, again, err := s.relayout(epp); again {
		return p, err
	}
	return finish(epp)
}

// relayout plans the exec again when its credentials change the layout it
// was planned on (afterCreds: a set-id exec randomised although the caller
// asked for none, or a secure one under a stack limit above _STK_LIM):
// Linux knows the credentials before it lays the address space out, the
// handlers here only once they have found the file they load. again is
// false when the layout stands.
func (s *Switch) relayout(epp *Package) (p *Plan, again bool, err error) {
	want := epp.afterCreds(newCred(epp))
	if want == epp.layout() {
		return nil, false, nil
	}
	epp.close()
	*epp = Package{Req: epp.Req, Sw: s, Path: epp.Req.Path, Rand: epp.Rand, relaid: &want}
	epp.files = epp.filesBuf[:0]
	p, err = s.execve(epp)
	return p, true, err
}

// tryWithAutoload runs the handlers; when all of them answer ENOEXEC and an
// autoload hook adds handlers (a new generation), it tries once more (the
// seed's exec_autoload retry in execve1).
func (s *Switch) tryWithAutoload(epp *Package) error {
	s.mu.RLock()
	err := s.makeCmds(epp)
	if err != nil && errors.Is(err, unix.ENOEXEC) && s.Autoload != nil && epp.Flags&FlagDestr == 0 {
		gen := s.gen
		s.mu.RUnlock()
		s.Autoload(s)
		s.mu.RLock()
		if s.gen != gen {
			epp.Cmds, epp.Chain = nil, nil
			err = s.makeCmds(epp)
		}
	}
	s.mu.RUnlock()
	return err
}

// replanCompat redoes the handlers on an ia32 layout: Linux picks the
// compat geometry when the ELF handler sets the personality, before the
// image is mapped.
func (s *Switch) replanCompat(epp *Package) (*Plan, error) {
	epp.close()
	fresh := &Package{Req: epp.Req, Sw: s, Path: epp.Req.Path, Rand: epp.Rand, relaid: epp.relaid}
	*epp = *fresh
	if err := epp.openExec(); err != nil {
		return nil, err
	}
	args, err := stack.NewArgs(epp.Req.Argv, epp.Req.Envp, epp.Req.Path, epp.Req.RlimitStack)
	if err != nil {
		return nil, &ExecError{Path: epp.Req.Path, Err: err}
	}
	epp.Args = args
	if epp.Space, err = newLayout(epp, true); err != nil {
		return nil, err
	}
	s.mu.RLock()
	err = s.makeCmds(epp)
	s.mu.RUnlock()
	if err != nil {
		if errors.Is(err, ErrFatal) {
			return fatalPlan(epp, err), nil
		}
		return nil, err
	}
	if p, again, err := s.relayout(epp); again {
		return p, err
	}
	return finish(epp)
}

// fatalPlan is the plan of an exec that fails past the point of no return.
func fatalPlan(epp *Package, err error) *Plan {
	p := &Plan{Fatal: err, Chain: epp.Chain, Interp: epp.ELF.Interp, Cmds: epp.Cmds, Entry: epp.Entry,
		ELF: epp.ELF, Compat: epp.Flags&Flag32 != 0, Esw: epp.Esw, Files: epp.files, Comm: comm(epp.Req.Path),
		Extended: epp.Extended, ExecFD: epp.ExecFD}
	p.Program = epp.progAttr
	epp.emulPlan(p)
	if epp.Space != nil {
		p.Layout = *epp.Space
	}
	epp.files = nil
	return p
}

// random returns a uniformly random value below 1<<bits from epp.Rand.
func (epp *Package) random(bits uint) (uint64, error) {
	v := epp.Rand.Uint64()
	return v & (1<<bits - 1), epp.Rand.err
}

// Random returns a random value below 1<<bits for a handler's ASLR offset,
// or 0 when the request asks for no randomisation.
func (epp *Package) Random(bits uint) uint64 {
	if epp.NoRandom() {
		return 0
	}
	v, err := epp.random(bits)
	if err != nil {
		return 0
	}
	return v
}

// newLayout computes the new image's stack top and mmap base as Linux does
// (randomize_stack_top, setup_arg_pages, arch_pick_mmap_layout).
func newLayout(epp *Package, compat bool) (*vm.Layout, error) {
	req := epp.Req
	lp := epp.layout()
	// cap_mmap_addr checks the credentials begin_new_exec installed.
	l := &vm.Layout{TaskSize: vm.TaskSize64, StackTop: stackTop64, MinAddr: req.machine().MmapMinAddr, RawIO: req.Cred.CapSysRawio}
	rndMask, mmapBits := uint64(stackRndMask), uint(mmapRndBits)
	if compat {
		l.TaskSize, l.StackTop = vm.TaskSize32, stackTop32
		rndMask, mmapBits = stackRndMask32, mmapRndBits32
	}
	var stackRnd, mmapRnd uint64
	if !lp.noRandom {
		r, err := epp.random(64)
		if err != nil {
			return nil, err
		}
		stackRnd = (r & rndMask) * vm.PageSize
		if mmapRnd, err = epp.random(mmapBits); err != nil {
			return nil, err
		}
		mmapRnd *= vm.PageSize
		// setup_arg_pages: arch_align_stack then PAGE_ALIGN moves the top
		// down by a page at most.
		a, err := epp.random(32)
		if err != nil {
			return nil, err
		}
		top := uint64(l.StackTop) - stackRnd
		top = (top - a%stackGapRand) &^ 0xf
		l.StackTop = vm.Addr((top + vm.PageSize - 1) &^ (vm.PageSize - 1))
	}
	// mmap_base: below the stack's rlimit, its random range and the guard
	// gap, at least 128 MiB and at most 5/6 of the address space.
	gap := lp.rlimStack
	pad := uint64(vm.StackGuardGap)
	if !lp.noRandom {
		pad += (rndMask + 1) * vm.PageSize
	}
	if gap+pad > gap {
		gap += pad
	}
	gapMax := uint64(l.TaskSize) / 6 * 5
	gap = min(max(gap, gapMin), gapMax)
	// PAGE_ALIGN rounds up: it matters when gap is not a whole number of
	// pages (5/6 of the address space, with RLIMIT_STACK unlimited).
	l.MmapBase = vm.Addr((uint64(l.TaskSize) - gap - mmapRnd + vm.PageSize - 1) &^ (vm.PageSize - 1))
	// mmap_legacy_base: TASK_UNMAPPED_BASE (a third of the address
	// space, page aligned) plus the same random offset.
	l.LegacyBase = vm.Addr((uint64(l.TaskSize)/3+vm.PageSize-1)&^(vm.PageSize-1) + mmapRnd)
	// arch_pick_mmap_layout: the legacy layout places bottom-up from
	// there (mmap_is_legacy).
	if lp.legacy || req.machine().LegacyVALayout {
		l.MmapBase, l.Legacy = l.LegacyBase, true
	}
	// The stack's range (Layout.Stack) is known once the arguments are:
	// see StackRange.
	return l, nil
}

// finish turns a package whose handlers succeeded into a Plan: vdso
// placement, credentials, the aux vector and the stack.
func finish(epp *Package) (*Plan, error) {
	req := epp.Req
	host := req.Host
	if host == nil {
		h, err := stack.HostFromProc()
		if err != nil {
			return nil, fmt.Errorf("reading this machine's aux vector: %w", err)
		}
		host = h
	}
	compat := epp.Flags&Flag32 != 0
	p := &Plan{
		Chain:  epp.Chain,
		Interp: epp.ELF.Interp,
		Cmds:   epp.Cmds,
		Entry:  epp.Entry,
		ELF:    epp.ELF,
		Compat: compat,
		Esw:    epp.Esw,
		Files:  epp.files,

		Extended: epp.Extended,
		ExecFD:   epp.ExecFD,
	}
	p.Program = epp.progAttr
	epp.emulPlan(p)
	epp.files = nil

	// arch_setup_additional_pages: the vdso (with its vvar pages first)
	// is the next top-down mapping after the images, stack_guard_gap
	// below the stack at the nearest.
	epp.Space.Stack = epp.StackRange()
	if span := host.VvarLen + host.VDSOLen; span > 0 {
		a, ok := epp.Space.Place(span, vm.PageSize)
		if !ok {
			// arch_setup_additional_pages runs past the point of no
			// return: the exec is killed.
			p.Layout = *epp.Space
			p.Fatal = fmt.Errorf("%w: no room for the vdso (ENOMEM)", ErrFatal)
			p.Comm = comm(req.Path)
			return p, nil
		}
		epp.Space.Take(vm.Range{Start: a, End: a + vm.Addr(span)})
		p.VvarStart, p.VDSOStart, p.VDSOEnd = a, a+vm.Addr(host.VvarLen), a+vm.Addr(span)
		p.vdsoRegions = host.VDSORegions
	}
	p.Layout = *epp.Space

	p.Cred = newCred(epp)
	p.Comm = comm(req.Path)
	if req.File != nil && epp.File != nil && isFDName(req.Path) {
		// An exec by descriptor (AT_EMPTY_PATH) names the task after the
		// file that is loaded (its dentry), not after the /dev/fd/N name:
		// for a script, after its interpreter (measured on 6.18). One
		// relative to a directory's descriptor, /dev/fd/N/NAME, is named
		// after NAME (alloc_bprm sets comm_from_dentry for an empty name
		// only).
		p.Comm = comm(dentryName(epp.File))
	}
	var vsyscall uint64
	if compat && p.VDSOStart != 0 {
		// ARCH_DLINFO_IA32: AT_SYSINFO is __kernel_vsyscall in the
		// 32-bit vdso, which this (64-bit) process does not have: the
		// kernel told a probe where it is.
		if off := req.machine().VsyscallOffset(); off != 0 {
			vsyscall = uint64(p.VDSOStart) + off
		}
	}
	p.AuxIn = stack.AuxInfo{
		Sysinfo:     vsyscall,
		SysinfoEHDR: uint64(p.VDSOStart),
		Phdr:        epp.ELF.Phdr,
		Phent:       epp.ELF.Phent,
		Phnum:       epp.ELF.Phnum,
		Base:        uint64(epp.ELF.InterpBase),
		Entry:       uint64(epp.ELF.Entry),
		UID:         p.Cred.UID,
		EUID:        p.Cred.EUID,
		GID:         p.Cred.GID,
		EGID:        p.Cred.EGID,
		Secure:      p.Cred.Secure,
	}
	if epp.Flags&FlagPreserveArgv0 != 0 {
		p.AuxIn.Flags |= atFlagsPreserveArgv0
	}
	if epp.ExecFD != nil {
		p.AuxIn.HasExecFD = true
		p.AuxIn.ExecFD = lowestFreeFD(req.Pid)
	}
	img := stack.Image{Top: epp.Space.StackTop, Args: epp.Args, Platform: "x86_64", Compat: compat}
	if compat {
		img.Platform = "i686"
		img.Auxv = stack.Auxv32(host, &p.AuxIn)
	} else {
		img.Auxv = stack.Auxv64(host, &p.AuxIn)
	}
	if !epp.NoRandom() {
		if _, err := epp.Rand.Read(img.Random[:]); err != nil {
			return nil, err
		}
		g, err := epp.random(32)
		if err != nil {
			return nil, err
		}
		img.Gap = g % stackGapRand
	} else if _, err := epp.Rand.Read(img.Random[:]); err != nil {
		// AT_RANDOM is random even without ASLR; a deterministic Rand
		// gives deterministic bytes.
		return nil, err
	}
	p.Image = img
	p.MM = MM{
		StartCode: epp.ELF.StartCode, EndCode: epp.ELF.EndCode,
		StartData: epp.ELF.StartData, EndData: epp.ELF.EndData,
		StartBrk: epp.ELF.StartBrk, Brk: epp.ELF.StartBrk,
	}
	p.rlimStack = epp.layout().rlimStack
	if err := p.layStack(); err != nil {
		return nil, &ExecError{Path: req.Path, Err: err}
	}
	lay := p.Stack
	// The kernel grows the new stack while it writes the tables; past
	// RLIMIT_STACK the write faults after the point of no return.
	if rl := p.rlimStack; uint64(epp.Space.StackTop-lay.SP.RoundDown()) > rl&^(vm.PageSize-1) {
		p.Fatal = fmt.Errorf("%w: the initial stack needs %d bytes, RLIMIT_STACK is %d", ErrFatal, uint64(epp.Space.StackTop-lay.SP.RoundDown()), rl)
	}
	if p.Fatal == nil {
		if err := p.walkArgs(); errors.Is(err, ErrFatal) {
			p.Fatal = err
		} else if err != nil {
			return nil, &ExecError{Path: req.Path, Err: err}
		}
	}
	return p, nil
}

// isFDName reports whether name is /dev/fd/N, the name of an exec by
// descriptor (fs/exec.c alloc_bprm's fdpath for an empty name).
func isFDName(name string) bool {
	n, ok := strings.CutPrefix(name, "/dev/fd/")
	if !ok || n == "" {
		return false
	}
	for _, c := range n {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// comm is the task name Linux sets: the basename of the path as passed,
// truncated to 15 bytes (__set_task_comm(kbasename(bprm->filename))).
// dentryName is the name of f's dentry: its /proc path without the
// " (deleted)" that d_path adds for an unlinked file (a memfd: the task of
// an fexecve'd memfd "x" is "memfd:x", measured on 6.18).
func dentryName(f *vm.File) string {
	name := f.Name()
	if r, ok := f.R.(interface{ Fd() uintptr }); ok && strings.HasSuffix(name, " (deleted)") {
		var st unix.Stat_t
		if unix.Fstat(int(r.Fd()), &st) == nil && st.Nlink == 0 {
			name = strings.TrimSuffix(name, " (deleted)")
		}
	}
	return name
}

func comm(name string) string {
	b := path.Base(name)
	if i := len(name) - 1; i >= 0 && name[i] == '/' {
		b = ""
	}
	if len(b) > commLen-1 {
		b = b[:commLen-1]
	}
	return b
}

// Renamed gives the plan of an exec made under the name planned (a name
// of the same file in the planner's own view: /proc/PID/... for the
// caller's /proc/self/..., its descriptor's number here for its own) the
// name the caller gave it, where the program sees it: AT_EXECFN, a
// script's name in its interpreter's argv, and comm.
func (p *Plan) Renamed(planned, name string) {
	if planned == name {
		return
	}
	p.Comm = comm(name)
	a := p.Image.Args
	if a == nil {
		return
	}
	if a.ExecFn == planned {
		a.ExecFn = name
	}
	if len(p.Chain) > 1 {
		for i, s := range a.Argv {
			if s == planned {
				a.Argv[i] = name
			}
		}
	}
	if p.Stack != nil && p.layStack() != nil {
		// The strings moved, and so did everything below them; a
		// stack that no longer fits is left for the backend to lay
		// out (and refuse).
		p.Stack = nil
	}
}

// layStack lays the initial stack out from p.Image, with the mm fields
// and the [stack] mapping that follow from it.
func (p *Plan) layStack() error {
	lay, err := stack.Build(&p.Image)
	if err != nil {
		return err
	}
	p.Stack = lay
	p.StackVMA = stackVMA(p.Image.Top, lay.ArgStart, p.rlimStack)
	p.MM.StartStack = lay.SP
	p.MM.ArgStart, p.MM.ArgEnd = lay.ArgStart, lay.ArgEnd
	p.MM.EnvStart, p.MM.EnvEnd = lay.EnvStart, lay.EnvEnd
	return nil
}

// Close releases the files a plan holds.
func (p *Plan) Close() error {
	var first error
	for _, f := range p.Files {
		if c, ok := f.R.(io.Closer); ok {
			if err := c.Close(); err != nil && first == nil {
				first = err
			}
		}
	}
	p.Files = nil
	return first
}

func (epp *Package) close() {
	for _, f := range epp.files {
		if c, ok := f.R.(io.Closer); ok {
			c.Close()
		}
	}
	epp.files = nil
}

// StackRange is where the new image's [stack] mapping is while its
// segments are mapped (setup_arg_pages runs before them): the pages of the
// argument strings below the stack top, expanded by 128 KiB, at most
// RLIMIT_STACK. A segment mapped there with MAP_FIXED_NOREPLACE fails with
// EEXIST.
func (epp *Package) StackRange() vm.Range {
	if epp.Space == nil || epp.Args == nil {
		return vm.Range{}
	}
	top := epp.Space.StackTop
	// bprm->p: the strings end a pointer's size below the top.
	used := epp.Args.StringBytes() + 8
	if used > uint64(top) {
		return vm.Range{}
	}
	return stackVMA(top, top-vm.Addr(used), epp.layout().rlimStack)
}

// stackVMA is the initial [stack] mapping (fs/exec.c setup_arg_pages): the
// pages the strings occupy, expanded by 128 KiB, or to RLIMIT_STACK when
// that is smaller.
func stackVMA(top, lowest vm.Addr, rlim uint64) vm.Range {
	const stackExpand = 128 << 10
	start := lowest.RoundDown()
	used := uint64(top - start)
	rl := rlim &^ (vm.PageSize - 1)
	if used+stackExpand > rl {
		start = top - vm.Addr(rl)
	} else {
		start -= stackExpand
	}
	return vm.Range{Start: start, End: top}
}
