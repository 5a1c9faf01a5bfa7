//go:build linux && amd64

package linux

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/execsw"
	"github.com/uexec/uexec/internal/sys"
	"github.com/uexec/uexec/internal/wire"
	"github.com/uexec/uexec/stack"
	"github.com/uexec/uexec/vm"
)

// stack lays the initial stack out against the plan's stack top, and emits
// the ops that give the stub's [stack] mapping the kernel's size, clear
// what the stub's own start left in it, copy the image to the same place
// below the stub's real top, and fix up every pointer in it. It returns the
// program's stack pointer.
func (c *compiler) stack(pd uint8, regOf func(vm.Addr) uint8, vdso wire.Value) (wire.Value, error) {
	p, env := c.p, c.env
	top := p.Image.Top
	// The plan's layout, with AT_RANDOM bytes of this exec's own (a plan
	// may be started more than once).
	var random [16]byte
	if _, err := io.ReadFull(env.rand, random[:]); err != nil {
		return wire.Value{}, fmt.Errorf("AT_RANDOM: %w", err)
	}
	lay := p.Stack
	if lay == nil || lay.SP+vm.Addr(len(lay.Bytes)) != top {
		img := p.Image // Build copies the aux vector it fills in
		var err error
		if lay, err = stack.Build(&img); err != nil {
			return wire.Value{}, err
		}
	}
	c.out.sp = lay.SP

	rd, err := c.reg()
	if err != nil {
		return wire.Value{}, err
	}
	c.emit(wire.Op{Kind: wire.Set, Dst: rd, V: [8]wire.Value{wire.At(wire.RTop, neg(uint64(top)))}, Name: "stack delta"})
	at := func(a vm.Addr) wire.Value { return wire.At(rd, uint64(a)) }
	sp := at(lay.SP)

	// setup_arg_pages: the mapping the kernel would leave.
	wantLen := uint64(top - stackStart(p, top, lay, env.rlimit))
	haveLen := stubStackLen(env.stubArgs, env.rlimit)
	switch {
	case wantLen > haveLen:
		// Only a fault grows a stack: touch its lowest word.
		c.emit(wire.Op{Kind: wire.Store, V: [8]wire.Value{wire.At(wire.RTop, neg(wantLen)), wire.Imm(0)}, Name: "grow the stack"})
	case wantLen < haveLen:
		c.syscall("munmap(stack bottom)", unix.SYS_MUNMAP, wire.At(wire.RTop, neg(haveLen)), wire.Imm(haveLen-wantLen))
	}

	low, err := c.reg()
	if err != nil {
		return wire.Value{}, err
	}
	n, err := c.reg()
	if err != nil {
		return wire.Value{}, err
	}
	c.emit(wire.Op{Kind: wire.Min, Dst: low, V: [8]wire.Value{wire.At(wire.RSP, 0), sp}})
	c.emit(wire.Op{Kind: wire.Sub, Dst: n, V: [8]wire.Value{wire.At(wire.RTop, 0), wire.At(low, 0)}})
	c.emit(wire.Op{Kind: wire.Fill0, V: [8]wire.Value{wire.At(low, 0), wire.At(n, 0)}, Name: "clear the stub's stack"})
	// The gap below the strings (arch_align_stack: up to 8 KiB) is
	// zeros, which the clear wrote: only the bytes on either side of it
	// are copied.
	lo, hi := stackGap(lay)
	for _, part := range [][2]uint64{{0, lo}, {hi, uint64(len(lay.Bytes))}} {
		if part[0] < part[1] {
			off := c.put(lay.Bytes[part[0]:part[1]])
			if r := uint64(lay.RandomAddr - lay.SP); r >= part[0] && r+16 <= part[1] {
				copy(c.data[off+r-part[0]:], random[:])
			}
			c.emit(wire.Op{Kind: wire.Copy, V: [8]wire.Value{sp.Plus(part[0]), wire.At(wire.RData, off), wire.Imm(part[1] - part[0])}, Name: "write the stack"})
		}
	}

	le := binary.LittleEndian
	// The words that can hold pointers: argc, argv, envp and the aux
	// vector, below the strings.
	auxOff := uint64(lay.AuxvAddr - lay.SP)
	for o := uint64(0); o < auxOff+16*uint64(len(lay.Auxv)); o += 8 {
		w := le.Uint64(lay.Bytes[o:])
		var v wire.Value
		isAux := false
		if o >= auxOff && (o-auxOff)%16 == 8 {
			// An aux value whose address is the running image's.
			switch e := lay.Auxv[(o-auxOff)/16]; e.Type {
			case stack.AT_PHDR, stack.AT_ENTRY:
				v, isAux = wire.At(pd, e.Value), true
			case stack.AT_BASE:
				if e.Value != 0 {
					v, isAux = wire.At(regOf(vm.Addr(e.Value)), e.Value), true
				}
			case stack.AT_SYSINFO_EHDR:
				v, isAux = vdso, true
			}
		}
		switch {
		case isAux:
			if v.Reg == 0 && v.Imm == w {
				continue
			}
		case stackPointer(lay, o):
			v = at(vm.Addr(w))
		default:
			continue
		}
		c.emit(wire.Op{Kind: wire.Store, V: [8]wire.Value{sp.Plus(o), v}})
	}
	if p.ELF.ExecStack {
		c.syscall("mprotect(stack, PROT_EXEC)", unix.SYS_MPROTECT, wire.At(wire.RTop, neg(wantLen)), wire.Imm(wantLen),
			wire.Imm(unix.PROT_READ|unix.PROT_WRITE|unix.PROT_EXEC))
	}
	c.lay = lay
	c.rd = rd
	return sp, nil
}

// stackPointer says whether the word at offset o of lay.Bytes holds an
// address in the stack, as stack.Build lays it out: an argv or envp entry
// (not their NULLs), or the value of AT_RANDOM, AT_EXECFN or AT_PLATFORM.
func stackPointer(lay *stack.Layout, o uint64) bool {
	a := lay.SP + vm.Addr(o)
	argv := lay.ArgvAddr + vm.Addr(8*lay.Argc)
	switch {
	case a >= lay.ArgvAddr && a < argv, a >= lay.EnvpAddr && a < lay.AuxvAddr-8:
		return true
	case a >= lay.AuxvAddr && (a-lay.AuxvAddr)%16 == 8:
		switch lay.Auxv[(a-lay.AuxvAddr)/16].Type {
		case stack.AT_RANDOM, stack.AT_EXECFN, stack.AT_PLATFORM:
			return true
		}
	}
	return false
}

// stackGap returns where in lay.Bytes the zeros between the platform
// string and the argument strings start and end: the random gap and the
// alignment below the strings.
func stackGap(lay *stack.Layout) (lo, hi uint64) {
	b := lay.Bytes
	lo = uint64(lay.PlatformAddr - lay.SP)
	if n := bytes.IndexByte(b[lo:], 0); n >= 0 {
		lo += uint64(n) + 1
	}
	hi = uint64(lay.ArgStart - lay.SP)
	if hi < lo {
		hi = lo
	}
	return lo, hi
}

// superprivNote is the difference of an image whose exe_fd the stub set.
const superprivNote = "PF_SUPERPRIV is set (/proc/PID/stat's flags 0x100, ps -o f shows 4): the stub's prctl(PR_SET_MM_MAP) with exe_fd used CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE, and only a fork clears the flag"

// mm sets the mm fields with prctl(PR_SET_MM, PR_SET_MM_MAP), which needs
// no capability except for exe_fd: where that is refused (EPERM without
// CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE) the call is made again without
// it. Then comm, with PR_SET_NAME.
func (c *compiler) mm(pd uint8, sp wire.Value) error {
	p, env, lay := c.p, c.env, c.lay
	le := binary.LittleEndian
	mm := p.MM
	// The break follows the program when it was planned after its end
	// (randomised within 1 GiB); a static-pie's break is at
	// ELF_ET_DYN_BASE whatever the program's place.
	var brk uint8
	progEntry := p.ELF.Entry
	if progEntry == 0 {
		progEntry = p.Entry
	}
	if im := findImage(splitImages(p.Cmds), progEntry); im != nil && mm.StartBrk >= im.span.End && mm.StartBrk-im.span.End <= 1<<30+2*vm.PageSize {
		brk = pd
	}
	rd := c.rd
	fields := []wire.Value{
		wire.At(pd, uint64(mm.StartCode)), wire.At(pd, uint64(mm.EndCode)),
		wire.At(pd, uint64(mm.StartData)), wire.At(pd, uint64(mm.EndData)),
		wire.At(brk, uint64(mm.StartBrk)), wire.At(brk, uint64(mm.Brk)),
		sp,
		wire.At(rd, uint64(lay.ArgStart)), wire.At(rd, uint64(lay.ArgEnd)),
		wire.At(rd, uint64(lay.EnvStart)), wire.At(rd, uint64(lay.EnvEnd)),
		wire.At(rd, uint64(lay.AuxvAddr)),
	}
	exe, haveExe := c.fdv[env.exe]
	haveExe = haveExe && env.exe != nil
	auxvSize := uint64(16 * len(lay.Auxv))
	buf := make([]byte, sys.PrctlMMMapSize+8) // 8 bytes of room for the exe_fd store below
	le.PutUint64(buf[96:], auxvSize|uint64(0xffffffff)<<32)
	off := c.put(buf)
	for i, v := range fields {
		if v.Reg == 0 {
			le.PutUint64(c.data[off+8*uint64(i):], v.Imm)
			continue
		}
		c.emit(wire.Op{Kind: wire.Store, V: [8]wire.Value{wire.At(wire.RData, off+8*uint64(i)), v}})
	}
	if haveExe {
		// exe_fd is the u32 at 100: a 64-bit store of the descriptor
		// writes it and 4 bytes of the room after the struct.
		c.emit(wire.Op{Kind: wire.Store, V: [8]wire.Value{wire.At(wire.RData, off+100), exe}, Name: "exe_fd"})
	}
	arg := wire.At(wire.RData, off)
	c.mmOff, c.mmAuxWord = off, auxvSize|uint64(0xffffffff)<<32
	o := c.syscall("prctl(PR_SET_MM_MAP)", unix.SYS_PRCTL, wire.Imm(unix.PR_SET_MM), wire.Imm(unix.PR_SET_MM_MAP), arg, wire.Imm(sys.PrctlMMMapSize))
	if haveExe {
		r, err := c.reg()
		if err != nil {
			return err
		}
		o.Flags, o.Dst = wire.FlagMayFail, r
		c.emit(wire.Op{Kind: wire.Store, Flags: wire.FlagIfErr, Cond: r,
			V: [8]wire.Value{wire.At(wire.RData, off+96), wire.Imm(auxvSize | uint64(0xffffffff)<<32)}, Name: "without exe_fd"})
		o = c.syscall("prctl(PR_SET_MM_MAP) without exe_fd", unix.SYS_PRCTL, wire.Imm(unix.PR_SET_MM), wire.Imm(unix.PR_SET_MM_MAP), arg, wire.Imm(sys.PrctlMMMapSize))
		o.Flags, o.Cond = wire.FlagIfErr, r
		if !env.canSetExeFD() {
			c.note("/proc/PID/exe names the stub, not %s: prctl(PR_SET_MM_MAP) refuses exe_fd without CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE", env.exe.Name())
		} else if !exeFDAllowed(env.exe) {
			// A binfmt_misc F interpreter whose mode changed since its
			// rule was registered: the kernel runs it (file_clone_open
			// checks nothing again), prctl checks MAY_EXEC.
			c.note("/proc/PID/exe names the stub, not %s: prctl(PR_SET_MM_MAP) refuses an exe_fd this process may not execute", env.exe.Name())
		} else {
			c.note("%s", superprivNote)
		}
	} else {
		c.note("/proc/PID/exe names the stub: the plan maps no program file")
	}
	comm := make([]byte, 16)
	copy(comm[:15], p.Comm)
	c.syscall("prctl(PR_SET_NAME)", unix.SYS_PRCTL, wire.Imm(unix.PR_SET_NAME), wire.At(wire.RData, c.put(comm)))
	return nil
}

// exeFDAllowed reports whether this process may execute f, as
// prctl_set_mm_exe_file requires of an exe_fd (MAY_EXEC, not on a noexec
// mount); true when f has no descriptor to ask with.
func exeFDAllowed(f *vm.File) bool {
	r, ok := f.R.(interface{ Fd() uintptr })
	if !ok {
		return true
	}
	return unix.Faccessat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(int(r.Fd())), unix.X_OK, unix.AT_EACCESS) == nil
}

// stackStart returns where the [stack] mapping of a kernel exec starts for
// the stack top top (fs/exec.c setup_arg_pages).
func stackStart(p *execsw.Plan, top vm.Addr, lay *stack.Layout, rlimit uint64) vm.Addr {
	if r := p.StackVMA; r.End > r.Start && r.End == top {
		return r.Start
	}
	const stackExpand = 128 << 10
	start := lay.ArgStart.RoundDown() - stackExpand
	if lim := vm.Addr(rlimit &^ (vm.PageSize - 1)); rlimit != unix.RLIM_INFINITY && top-start > lim {
		start = top - lim
	}
	return start
}

// stubStackLen is the size of the [stack] mapping the kernel gives the
// stub, whose strings (execfn, argv, envp) take args bytes: the pages that
// hold them and the 8 bytes above, plus 128 KiB, at most RLIMIT_STACK but
// never less than those pages.
func stubStackLen(args int, rlimit uint64) uint64 {
	pages := (uint64(args) + 8 + vm.PageSize - 1) &^ (vm.PageSize - 1)
	n := pages + 128<<10
	if lim := rlimit &^ (vm.PageSize - 1); rlimit != unix.RLIM_INFINITY && n > lim {
		n = max(lim, pages)
	}
	return n
}
