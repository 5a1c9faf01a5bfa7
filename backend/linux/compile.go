//go:build linux && amd64

package linux

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/execsw"
	"github.com/uexec/uexec/internal/planstub"
	"github.com/uexec/uexec/internal/sys"
	"github.com/uexec/uexec/internal/wire"
	"github.com/uexec/uexec/stack"
	"github.com/uexec/uexec/vm"
)

// stubEnv is what compiling a plan needs to know of the process the stub
// will run in.
type stubEnv struct {
	fds map[*vm.File]int // each plan file's descriptor in the stub
	// open names the plan files the stub opens itself (through a tracer's
	// /proc/PID/fd), instead of fds; byName those it opens by their
	// resolved names and checks to be the planned files (device, inode).
	open     map[*vm.File]string
	byName   map[*vm.File]string
	statusFD int   // where the stub reports a failure; -1 for nowhere
	closeFDs []int // the stub's descriptors that are uexec's: closed at the end
	noRandom bool
	persona  uint32    // the stub's personality
	vdso     vdsoFacts // this kernel's vdso
	rlimit   uint64    // the stub's RLIMIT_STACK (soft)
	stubArgs int       // bytes of the stub's execfn, argv and envp strings
	exe      *vm.File  // the file /proc/PID/exe should name; nil leaves it
	setCreds bool      // apply set-id credentials (a privileged uexec)
	sigMask  *uint64   // the program's signal mask; nil keeps the stub's
	rand     io.Reader // AT_RANDOM
	logf     func(string, ...any)
	// notify: the stub installs the untraced tree's seccomp filter (with
	// no_new_privs first when noNewPrivs) before the program runs, and
	// sends its listener to the supervisor over the socket notifySock.
	notify     bool
	notifySock int
	noNewPrivs bool
	// cloneProgram: after the filter, the stub clones the process that
	// execs the program (CLONE_PARENT: the supervisor's child too), sends
	// its pid over notifySock and exits, so that the program does not
	// have PF_SUPERPRIV, which the filter's CAP_SYS_ADMIN set in the stub
	// and only a fork clears (compileKernelExec).
	cloneProgram bool
	// nonDumpable: the caller may not read the program (PR_SET_DUMPABLE 0).
	nonDumpable bool
	// fexec: the kernel's exec is fexecve of this descriptor (Options).
	fexec *Fexecve
	// selfPersona is the personality of the thread that read persona.
	selfPersona uint32
	// exeFD caches canSetExeFD for one build: 0 unknown, 1 yes, -1 no.
	exeFD int8
}

// canSetExeFD is canSetExeFD, asked once per build (capget(2)).
func (env *stubEnv) canSetExeFD() bool {
	if env.exeFD == 0 {
		env.exeFD = -1
		if canSetExeFD() {
			env.exeFD = 1
		}
	}
	return env.exeFD > 0
}

// compiled is a plan turned into the stub's program.
type compiled struct {
	prog  *wire.Program
	buf   *progBuf // where prog's ops and data are (release)
	notes []string
	// cloned: the program runs in a process the stub forks
	// (stubEnv.cloneProgram).
	cloned bool
	// sp is the planned stack pointer (the stub's is this plus its stack
	// top minus the plan's).
	sp vm.Addr
	// entryWords is how many words below the initial stack pointer the
	// stub's last munmap returns to: the entry's, or a gadget's, the words
	// it pops and the entry's (gadget.go).
	entryWords int
	// kernel says why the stub hands the exec as requested to the kernel
	// (compileKernelExec); "" when it builds the image.
	kernel string
	// raw: the stub is to be started by vforkExec (its program sets the
	// signal mask).
	raw bool
}

// compiler builds the ops; registers are handed out in order.
type compiler struct {
	p    *execsw.Plan
	env  *stubEnv
	ops  []wire.Op
	data []byte
	next uint8
	out  *compiled

	// Set by stack: the layout and the register holding stub top - plan top.
	lay *stack.Layout
	rd  uint8
	// fdv is each plan file's descriptor in the stub; closeFDs those the
	// stub opened itself.
	fdv      map[*vm.File]wire.Value
	closeFDs []wire.Value
	// Set by mm: where the prctl_mm_map struct is in the data area, and
	// its auxv_size word with exe_fd -1.
	mmOff, mmAuxWord uint64
}

func (c *compiler) reg() (uint8, error) {
	if c.next >= wire.NRegs {
		return 0, fmt.Errorf("the plan needs more than %d registers: %w", wire.NRegs, unix.E2BIG)
	}
	c.next++
	return c.next - 1, nil
}

func (c *compiler) emit(o wire.Op) { c.ops = append(c.ops, o) }

func (c *compiler) syscall(name string, nr uint64, args ...wire.Value) *wire.Op {
	o := wire.Op{Kind: wire.Syscall, Nr: uint32(nr), Name: name}
	copy(o.V[:6], args)
	c.emit(o)
	return &c.ops[len(c.ops)-1]
}

// put appends b to the data area, 16-aligned, and returns its offset.
func (c *compiler) put(b []byte) uint64 {
	for len(c.data)%16 != 0 {
		c.data = append(c.data, 0)
	}
	off := uint64(len(c.data))
	c.data = append(c.data, b...)
	return off
}

func neg(a uint64) uint64 { return -a }

// errKernelOnly is a plan the stub cannot build: an image in the stub's
// own address range, or mm fields below vm.mmap_min_addr (an image the
// kernel maps at 0 for CAP_SYS_RAWIO), which prctl(PR_SET_MM_MAP) refuses
// (validate_prctl_map_addr). The kernel's exec of the program does it
// instead, where there is one.
var errKernelOnly = fmt.Errorf("an image only the kernel can build: %w", unix.ENOMEM)

// lsmMmapMinAddr is CONFIG_LSM_MMAP_MIN_ADDR's default on x86 (security/Kconfig).
const lsmMmapMinAddr vm.Addr = 0x10000

// compile turns a plan into the stub's program: the same steps, in the same
// order, as a kernel exec from begin_new_exec on, with every address that
// depends on where the kernel put the stub's stack, vdso or a placed image
// kept relative to the register that holds it.
func compile(p *execsw.Plan, env *stubEnv) (*compiled, error) {
	b, _ := progBufs.Get().(*progBuf)
	if b == nil {
		// Room for a dynamic program's plan (about 80 ops and 4 KiB
		// of data), so that the slices are not grown op by op.
		b = &progBuf{ops: make([]wire.Op, 0, 96), data: make([]byte, 0, 8192)}
	}
	c := &compiler{p: p, env: env, next: wire.RFirst, out: &compiled{buf: b}, ops: b.ops[:0], data: b.data[:0]}
	if err := c.run(); err != nil {
		c.out.release()
		return nil, err
	}
	c.out.prog = &wire.Program{StatusFD: int64(env.statusFD), Ops: c.ops, Data: c.data}
	return c.out, nil
}

// progBuf holds a compiled program's ops and data, and progBufs those of
// programs no longer needed: made anew, their ~24 KiB were cleared and
// collected again on every start.
type progBuf struct {
	ops     []wire.Op
	data    []byte
	encoded []byte // the program's wire form (encode)
}

var progBufs sync.Pool

// encode returns cp's program in its wire form, in memory release gives
// back.
func (cp *compiled) encode() []byte {
	if cp.buf == nil {
		return cp.prog.Encode()
	}
	cp.buf.encoded = cp.prog.EncodeTo(cp.buf.encoded)
	return cp.buf.encoded
}

// release gives cp's program's memory back for the next compile; cp.prog
// is not used after it.
func (cp *compiled) release() {
	if cp == nil || cp.buf == nil {
		return
	}
	if cp.prog != nil {
		cp.buf.ops, cp.buf.data = cp.prog.Ops, cp.prog.Data
	}
	clear(cp.buf.ops) // the names it holds
	progBufs.Put(cp.buf)
	cp.buf, cp.prog = nil, nil
}

func (c *compiler) note(format string, args ...any) {
	c.out.notes = append(c.out.notes, fmt.Sprintf(format, args...))
}

func (c *compiler) run() error {
	p, env := c.p, c.env
	reserved := vm.Range{Start: planstub.ReservedStart, End: planstub.ReservedEnd}
	for _, cmd := range p.Cmds {
		if cmdRange(cmd).Overlaps(reserved) {
			return fmt.Errorf("the image needs %v, where the stub runs: %w", cmdRange(cmd), errKernelOnly)
		}
	}
	// validate_prctl_map_addr compares with the kernel's mmap_min_addr,
	// the larger of the sysctl and CONFIG_LSM_MMAP_MIN_ADDR (64 KiB by
	// default), which nothing shows: the larger of the two is assumed.
	minMM := max(p.Layout.MinAddr, lsmMmapMinAddr)
	mm := p.MM
	for _, a := range []vm.Addr{mm.StartCode, mm.EndCode, mm.StartData, mm.EndData, mm.StartBrk, mm.Brk} {
		if a < minMM {
			return fmt.Errorf("mm field %v below mmap_min_addr %v, which PR_SET_MM_MAP refuses: %w", a, minMM, errKernelOnly)
		}
	}
	if p.ELF.ReadImpliesExec {
		c.syscall("personality(READ_IMPLIES_EXEC)", unix.SYS_PERSONALITY, wire.Imm(uint64(env.persona|sys.READ_IMPLIES_EXEC)))
	}

	// Files the stub opens itself get a register each.
	c.fdv = map[*vm.File]wire.Value{}
	for f, fd := range env.fds {
		c.fdv[f] = wire.Imm(uint64(fd))
	}
	for _, f := range planFileList(p) {
		name, ok := env.open[f]
		if !ok {
			continue
		}
		r, err := c.reg()
		if err != nil {
			return err
		}
		o := c.syscall("open "+f.Path, unix.SYS_OPENAT, wire.Imm(uint64(neg(100))), wire.At(wire.RData, c.put(append([]byte(name), 0))),
			wire.Imm(unix.O_RDONLY|unix.O_CLOEXEC))
		o.Dst = r
		c.fdv[f] = wire.At(r, 0)
		c.closeFDs = append(c.closeFDs, wire.At(r, 0))
	}

	if err := c.openByName(); err != nil {
		return err
	}

	imgs := splitImages(p.Cmds)
	delta := make([]uint8, len(imgs)) // register holding landed-planned; 0 when fixed
	placed := func(k int) bool {
		f := p.Cmds[imgs[k].first].Flags
		return f&(vm.FlagFixed|vm.FlagRelative) == 0
	}

	// The vdso moves when an image is placed by the kernel (it goes where
	// the stub's vdso is: the top of the mmap area, or its bottom in the
	// legacy layout) or, without ASLR, to the planned address. With ASLR it
	// follows the image planned next to it, right above it (below, in the
	// legacy layout), as the kernel maps it next to that one.
	vvarLen, span := uint64(p.VDSOStart-p.VvarStart), uint64(p.VDSOEnd-p.VvarStart)
	next := -1
	for k := range imgs {
		if placed(k) && (!p.Layout.Legacy && imgs[k].span.Start == p.VDSOEnd || p.Layout.Legacy && imgs[k].span.End == p.VvarStart) {
			next = k
		}
	}
	moveVDSO := p.VvarStart != 0 && env.vdso.ok && (env.noRandom || next >= 0)
	vdso := wire.At(wire.RVDSO, 0)
	if moveVDSO {
		c.syscall("munmap(vdso)", unix.SYS_MUNMAP, wire.At(wire.RVDSO, neg(vvarLen)), wire.Imm(span))
	}

	for i, cmd := range p.Cmds {
		k := 0
		for j := range imgs {
			if imgs[j].first <= i {
				k = j
			}
		}
		var addr wire.Value
		mapFlags := uint64(unix.MAP_PRIVATE)
		switch {
		case cmd.Flags&vm.FlagRelative != 0:
			addr = wire.At(delta[k], uint64(cmd.Addr))
			mapFlags |= unix.MAP_FIXED
		case cmd.Flags&vm.FlagFixed != 0:
			addr = wire.Imm(uint64(cmd.Addr))
			mapFlags |= unix.MAP_FIXED
		case env.noRandom:
			addr = wire.Imm(uint64(cmd.Addr))
		default:
			addr = wire.Imm(0)
		}
		base := cmd.Flags&vm.FlagBase != 0 && addr.Reg == 0 && mapFlags&unix.MAP_FIXED == 0
		var o *wire.Op
		switch cmd.Op {
		case vm.OpMap:
			fd, ok := c.fdv[cmd.File]
			if !ok {
				return fmt.Errorf("mmap: %s was not passed to the stub: %w", cmd.File.Name(), unix.EBADF)
			}
			o = c.syscall("mmap "+cmd.File.Path, unix.SYS_MMAP, addr, wire.Imm(cmd.Len), wire.Imm(uint64(cmd.Prot)),
				wire.Imm(mapFlags), fd, wire.Imm(cmd.Offset))
		case vm.OpZero, vm.OpReserve:
			prot := uint64(cmd.Prot)
			if cmd.Op == vm.OpReserve {
				prot = 0
			}
			o = c.syscall("mmap "+cmd.Op.String(), unix.SYS_MMAP, addr, wire.Imm(cmd.Len), wire.Imm(prot),
				wire.Imm(mapFlags|unix.MAP_ANONYMOUS), wire.Imm(^uint64(0)), wire.Imm(0))
		case vm.OpUnmap:
			c.syscall("munmap", unix.SYS_MUNMAP, addr, wire.Imm(cmd.Len))
		case vm.OpClear:
			if err := c.clear(cmd, addr); err != nil {
				return err
			}
		case vm.OpRead:
			var err error
			if o, err = c.read(cmd, addr, mapFlags); err != nil {
				return err
			}
		default:
			return fmt.Errorf("vm command %d (%v): unknown op: %w", i, cmd, unix.EINVAL)
		}
		if o != nil && mapFlags&unix.MAP_FIXED != 0 {
			o.Flags |= wire.FlagExpect
			o.V[6] = o.V[0]
		}
		if base && o != nil {
			r, err := c.reg()
			if err != nil {
				return err
			}
			o.Dst, o.V[7] = r, wire.Imm(neg(uint64(cmd.Addr.RoundDown())))
			delta[k] = r
		}
	}

	if moveVDSO {
		hint := wire.Imm(uint64(p.VvarStart))
		if !env.noRandom {
			hint = wire.At(delta[next], uint64(p.VvarStart))
		}
		c.syscall("arch_prctl(ARCH_MAP_VDSO_64)", unix.SYS_ARCH_PRCTL, wire.Imm(sys.ARCH_MAP_VDSO_64), hint)
		vdso = hint.Plus(vvarLen)
	}

	// The image that holds the program's entry (AT_ENTRY) carries the mm
	// fields; a placed interpreter carries AT_BASE and maybe the entry.
	progEntry := p.ELF.Entry
	if progEntry == 0 {
		progEntry = p.Entry
	}
	regOf := func(a vm.Addr) uint8 {
		for k := range imgs {
			if a >= imgs[k].span.Start && a < imgs[k].span.End {
				return delta[k]
			}
		}
		return 0
	}
	pd := regOf(progEntry)
	entry := wire.At(regOf(p.Entry), uint64(p.Entry))

	sp, err := c.stack(pd, regOf, vdso)
	if err != nil {
		return err
	}
	if err := c.mm(pd, sp); err != nil {
		return err
	}

	// The filter goes in while the stub has the caller's privileges:
	// seccomp needs CAP_SYS_ADMIN or no_new_privs.
	if env.notify {
		if err := c.notifyFilter(); err != nil {
			return err
		}
	}
	if p.Cred.SetID {
		if env.setCreds {
			cr := p.Cred
			c.syscall("setresgid", unix.SYS_SETRESGID, wire.Imm(uint64(cr.GID)), wire.Imm(uint64(cr.EGID)), wire.Imm(uint64(cr.SGID)))
			c.syscall("setresuid", unix.SYS_SETRESUID, wire.Imm(uint64(cr.UID)), wire.Imm(uint64(cr.EUID)), wire.Imm(uint64(cr.SUID)))
		} else {
			c.note("set-id bits not applied: that needs a root supervisor")
		}
	}
	if env.nonDumpable {
		c.syscall("prctl(PR_SET_DUMPABLE, 0)", unix.SYS_PRCTL, wire.Imm(unix.PR_SET_DUMPABLE), wire.Imm(0))
	}
	if env.sigMask != nil {
		off := c.put(binary.LittleEndian.AppendUint64(nil, *env.sigMask))
		c.syscall("rt_sigprocmask(SIG_SETMASK)", unix.SYS_RT_SIGPROCMASK, wire.Imm(unix.SIG_SETMASK), wire.At(wire.RData, off), wire.Imm(0), wire.Imm(8))
	}
	if p.Cred.Secure {
		// fs/exec.c begin_new_exec: a secure exec clears the death signal.
		c.syscall("prctl(PR_SET_PDEATHSIG)", unix.SYS_PRCTL, wire.Imm(unix.PR_SET_PDEATHSIG), wire.Imm(0))
	}
	// After the mappings and exe_fd, before the descriptors close.
	if err := c.checkPins(); err != nil {
		return err
	}
	// rflags 0x202: through bytes of the image (gadget.go), checked first
	// (while a failure can still be reported).
	via, words, fill := wire.Imm(0), 0, uint64(0)
	c.out.entryWords = 1
	if g, ok := findFlagsGadget(p, c.out.sp, p.Image.Top%vm.PageSize == 0); ok {
		r, err := c.reg()
		if err != nil {
			return err
		}
		via, words, fill = wire.At(regOf(g.at), uint64(g.at)), g.words(), g.fill()
		c.emit(wire.Op{Kind: wire.Load, Dst: r, V: [8]wire.Value{via}, Name: "the image's bytes that set rflags"})
		c.emit(wire.Op{Kind: wire.Check, V: [8]wire.Value{wire.At(r, 0), wire.Imm(g.want)}, Name: "is the planned bytes"})
		c.out.entryWords = words + 2
	} else {
		c.note("rflags at the entry are 0x246, not 0x202: the image has no `popfq; ret`, nor an `add $imm8, %%rsp; ...; ret` that leaves 0x202 for this stack pointer, for the stub to enter it through")
	}
	execFD, haveExecFD := c.fdv[p.ExecFD]
	haveExecFD = haveExecFD && p.ExecFD != nil
	for _, fd := range env.closeFDs {
		if haveExecFD && execFD == wire.Imm(uint64(fd)) {
			continue
		}
		c.syscall("close", unix.SYS_CLOSE, wire.Imm(uint64(fd)))
	}
	for _, fd := range c.closeFDs {
		if haveExecFD && execFD == fd {
			continue
		}
		c.syscall("close", unix.SYS_CLOSE, fd)
	}
	if haveExecFD {
		if err := c.installExecFD(execFD, sp); err != nil {
			return err
		}
	}
	gadget := wire.Imm(0)
	if env.vdso.gadget != 0 {
		gadget = vdso.Plus(env.vdso.gadget)
	} else {
		c.note("the stub's code, its data and stack at %#x and its plan at %#x stay mapped: this kernel's vdso has no `syscall` that returns with the registers cleared", planstub.RunAddr, planstub.PlanAddr)
	}
	c.emit(wire.Op{Kind: wire.Finish, V: [8]wire.Value{gadget, entry, sp, via, wire.Imm(uint64(words)), wire.Imm(fill)}, Name: "enter the program"})
	return nil
}

// installExecFD gives the program the descriptor t of the file a
// binfmt_misc rule with O passes (AT_EXECFD) at the number the kernel
// would: the lowest free one once uexec's are closed (begin_new_exec's
// get_unused_fd_flags). With t still open, a dup's lowest free number x
// is that number when below t; otherwise every number below t is taken and
// t itself is it. So the program keeps min(x, t), without close-on-exec,
// and the other is closed. Then the aux vector's AT_EXECFD gets the number,
// on the stack and in the kernel's copy (/proc/PID/auxv).
func (c *compiler) installExecFD(t, sp wire.Value) error {
	var r [4]uint8
	for i := range r {
		var err error
		if r[i], err = c.reg(); err != nil {
			return err
		}
	}
	x, keep, sum, other := r[0], r[1], r[2], r[3]
	o := c.syscall("fcntl(F_DUPFD) for AT_EXECFD", unix.SYS_FCNTL, t, wire.Imm(unix.F_DUPFD), wire.Imm(0))
	o.Dst = x
	c.emit(wire.Op{Kind: wire.Min, Dst: keep, V: [8]wire.Value{wire.At(x, 0), t}})
	c.emit(wire.Op{Kind: wire.Set, Dst: sum, V: [8]wire.Value{wire.At(x, 0), t}})
	c.emit(wire.Op{Kind: wire.Sub, Dst: other, V: [8]wire.Value{wire.At(sum, 0), wire.At(keep, 0)}})
	c.syscall("close", unix.SYS_CLOSE, wire.At(other, 0))
	c.syscall("fcntl(F_SETFD, 0) AT_EXECFD", unix.SYS_FCNTL, wire.At(keep, 0), wire.Imm(unix.F_SETFD), wire.Imm(0))
	lay := c.lay
	for j, e := range lay.Auxv {
		if e.Type == stack.AT_EXECFD {
			off := uint64(lay.AuxvAddr-lay.SP) + 16*uint64(j) + 8
			c.emit(wire.Op{Kind: wire.Store, V: [8]wire.Value{sp.Plus(off), wire.At(keep, 0)}, Name: "AT_EXECFD"})
		}
	}
	// /proc/PID/auxv is the copy PR_SET_MM_MAP took, before the number
	// was known: the same map again, without exe_fd, takes the new one.
	c.emit(wire.Op{Kind: wire.Store, V: [8]wire.Value{wire.At(wire.RData, c.mmOff+96), wire.Imm(c.mmAuxWord)}, Name: "without exe_fd"})
	c.syscall("prctl(PR_SET_MM_MAP) for AT_EXECFD", unix.SYS_PRCTL, wire.Imm(unix.PR_SET_MM), wire.Imm(unix.PR_SET_MM_MAP),
		wire.At(wire.RData, c.mmOff), wire.Imm(sys.PrctlMMMapSize))
	return nil
}

// clear zeroes the tail of a segment's last file page (padzero). A page
// that is not writable is written through /proc/self/mem, as the kernel's
// own write ignores the protection.
func (c *compiler) clear(cmd vm.Cmd, addr wire.Value) error {
	if cmd.Prot&vm.ProtWrite != 0 {
		c.emit(wire.Op{Kind: wire.Fill0, V: [8]wire.Value{addr, wire.Imm(cmd.Len)}, Name: "clear"})
		return nil
	}
	path := c.put([]byte("/proc/self/mem\x00"))
	zeros := c.put(make([]byte, cmd.Len))
	r, err := c.reg()
	if err != nil {
		return err
	}
	o := c.syscall("open /proc/self/mem", unix.SYS_OPENAT, wire.Imm(uint64(neg(100))), wire.At(wire.RData, path), wire.Imm(unix.O_RDWR|unix.O_CLOEXEC))
	o.Dst = r
	o = c.syscall("pwrite /proc/self/mem", unix.SYS_PWRITE64, wire.At(r, 0), wire.At(wire.RData, zeros), wire.Imm(cmd.Len), addr)
	o.Flags, o.V[6] = wire.FlagExpect, wire.Imm(cmd.Len)
	c.syscall("close /proc/self/mem", unix.SYS_CLOSE, wire.At(r, 0))
	return nil
}

// read maps anonymous memory and reads file bytes into it
// (vmcmd_map_readvn), then gives it the segment's protection.
func (c *compiler) read(cmd vm.Cmd, addr wire.Value, mapFlags uint64) (*wire.Op, error) {
	fd, ok := c.fdv[cmd.File]
	if !ok {
		return nil, fmt.Errorf("read: %s was not passed to the stub: %w", cmd.File.Name(), unix.EBADF)
	}
	start := cmd.Addr.RoundDown()
	end, ok := (cmd.Addr + vm.Addr(cmd.Len)).RoundUp()
	if !ok {
		return nil, fmt.Errorf("read at %v: %w", cmd.Addr, unix.EINVAL)
	}
	off := cmd.Addr.PageOffset()
	startV := wire.Value{Reg: addr.Reg, Imm: addr.Imm - off}
	if addr.Reg == 0 && addr.Imm == 0 {
		startV = addr
	}
	r, err := c.reg()
	if err != nil {
		return nil, err
	}
	m := c.syscall("mmap read", unix.SYS_MMAP, startV, wire.Imm(uint64(end-start)), wire.Imm(unix.PROT_READ|unix.PROT_WRITE),
		wire.Imm(mapFlags|unix.MAP_ANONYMOUS), wire.Imm(^uint64(0)), wire.Imm(0))
	m.Dst = r
	idx := len(c.ops) - 1
	o := c.syscall("pread "+cmd.File.Path, unix.SYS_PREAD64, fd, wire.At(r, off), wire.Imm(cmd.Len), wire.Imm(cmd.Offset))
	o.Flags, o.V[6] = wire.FlagExpect, wire.Imm(cmd.Len)
	if cmd.Prot != vm.ProtRead|vm.ProtWrite {
		c.syscall("mprotect", unix.SYS_MPROTECT, wire.At(r, 0), wire.Imm(uint64(end-start)), wire.Imm(uint64(cmd.Prot)))
	}
	// A base read's register is the image's delta; the caller sets it on
	// the mmap.
	return &c.ops[idx], nil
}

// notifyFilter installs the untraced tree's seccomp filter (notifyFilter)
// with a new listener and sends the listener to the supervisor over
// env.notifySock with SCM_RIGHTS.
func (c *compiler) notifyFilter() error {
	le := binary.LittleEndian
	prog := notifyFilter()
	code := c.put(filterBytes(prog))
	fprog := make([]byte, 16) // struct sock_fprog: u16 len, pad, pointer
	le.PutUint16(fprog, uint16(len(prog)))
	fp := c.put(fprog)
	c.emit(wire.Op{Kind: wire.Store, V: [8]wire.Value{wire.At(wire.RData, fp+8), wire.At(wire.RData, code)}})
	if c.env.noNewPrivs {
		c.syscall("prctl(PR_SET_NO_NEW_PRIVS)", unix.SYS_PRCTL, wire.Imm(unix.PR_SET_NO_NEW_PRIVS), wire.Imm(1), wire.Imm(0), wire.Imm(0), wire.Imm(0))
	}
	l, err := c.reg()
	if err != nil {
		return err
	}
	o := c.syscall("seccomp(SECCOMP_SET_MODE_FILTER)", unix.SYS_SECCOMP, wire.Imm(unix.SECCOMP_SET_MODE_FILTER),
		wire.Imm(unix.SECCOMP_FILTER_FLAG_NEW_LISTENER|unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV), wire.At(wire.RData, fp))
	o.Dst = l
	// struct msghdr with one byte and one SCM_RIGHTS descriptor.
	one := c.put([]byte{'L'})
	iov := make([]byte, 16)
	le.PutUint64(iov[8:], 1)
	iovOff := c.put(iov)
	cmsg := make([]byte, 24) // CMSG_SPACE(4); the 8-byte store of the fd fills its padding
	le.PutUint64(cmsg, 20)   // CMSG_LEN(4)
	le.PutUint32(cmsg[8:], unix.SOL_SOCKET)
	le.PutUint32(cmsg[12:], unix.SCM_RIGHTS)
	cmsgOff := c.put(cmsg)
	msg := make([]byte, 56)
	le.PutUint64(msg[24:], 1)  // msg_iovlen
	le.PutUint64(msg[40:], 24) // msg_controllen
	msgOff := c.put(msg)
	for _, st := range [][2]wire.Value{
		{wire.At(wire.RData, iovOff), wire.At(wire.RData, one)},
		{wire.At(wire.RData, cmsgOff+16), wire.At(l, 0)},
		{wire.At(wire.RData, msgOff+16), wire.At(wire.RData, iovOff)},
		{wire.At(wire.RData, msgOff+32), wire.At(wire.RData, cmsgOff)},
	} {
		c.emit(wire.Op{Kind: wire.Store, V: [8]wire.Value{st[0], st[1]}})
	}
	o = c.syscall("sendmsg(listener)", unix.SYS_SENDMSG, wire.Imm(uint64(c.env.notifySock)), wire.At(wire.RData, msgOff), wire.Imm(0))
	o.Flags, o.V[6] = wire.FlagExpect, wire.Imm(1)
	c.syscall("close(listener)", unix.SYS_CLOSE, wire.At(l, 0))
	if c.env.cloneProgram {
		if err := c.cloneProgram(); err != nil {
			return err
		}
		c.out.cloned = true
	}
	c.syscall("close(socket)", unix.SYS_CLOSE, wire.Imm(uint64(c.env.notifySock)))
	return nil
}

// cloneProgram has the stub fork the process that goes on to exec the
// program, with CLONE_PARENT (the supervisor's child, as the stub is),
// write its pid to the socket and exit: the fork clears PF_SUPERPRIV. Where
// the clone fails (the stub is a pid namespace's init) the stub goes on
// itself, and the supervisor reads no pid.
func (c *compiler) cloneProgram() error {
	r, err := c.reg()
	if err != nil {
		return err
	}
	parent, err := c.reg()
	if err != nil {
		return err
	}
	o := c.syscall("clone(CLONE_PARENT)", unix.SYS_CLONE, wire.Imm(unix.CLONE_PARENT|uint64(unix.SIGCHLD)), wire.Imm(0), wire.Imm(0), wire.Imm(0), wire.Imm(0))
	o.Dst, o.Flags = r, wire.FlagMayFail
	// The child's 0 less 1 reads as an errno, as a failed clone's does;
	// the parent's pid less 1 does not.
	c.emit(wire.Op{Kind: wire.Sub, Dst: parent, V: [8]wire.Value{wire.At(r, 0), wire.Imm(1)}})
	pid := c.put(make([]byte, 8))
	c.emit(wire.Op{Kind: wire.Store, Flags: wire.FlagIfOK, Cond: parent, V: [8]wire.Value{wire.At(wire.RData, pid), wire.At(r, 0)}})
	o = c.syscall("write(socket, pid)", unix.SYS_WRITE, wire.Imm(uint64(c.env.notifySock)), wire.At(wire.RData, pid), wire.Imm(8))
	o.Flags, o.Cond, o.V[6] = wire.FlagIfOK|wire.FlagExpect, parent, wire.Imm(8)
	o = c.syscall("exit_group(0)", unix.SYS_EXIT_GROUP, wire.Imm(0))
	o.Flags, o.Cond = wire.FlagIfOK, parent
	return nil
}

// compileKernelExec is the stub's program for an exec the kernel does
// itself: the signal mask and, for a tree, the notifying filter, then
// execve(path, argv, envp). The status descriptor is made close-on-exec
// first, so that it reports a failed execve and closes at a good one.
func compileKernelExec(path string, argv, envp []string, env *stubEnv, why string) (*compiled, error) {
	c := &compiler{env: env, next: wire.RFirst, out: &compiled{}}
	if env.sigMask != nil {
		off := c.put(binary.LittleEndian.AppendUint64(nil, *env.sigMask))
		c.syscall("rt_sigprocmask(SIG_SETMASK)", unix.SYS_RT_SIGPROCMASK, wire.Imm(unix.SIG_SETMASK), wire.At(wire.RData, off), wire.Imm(0), wire.Imm(8))
	}
	if env.notify {
		if err := c.notifyFilter(); err != nil {
			return nil, err
		}
	}
	for _, fd := range env.closeFDs {
		if fd != env.statusFD && (env.fexec == nil || fd != env.fexec.FD) {
			c.syscall("close", unix.SYS_CLOSE, wire.Imm(uint64(fd)))
		}
	}
	if env.fexec != nil && env.fexec.CloseOnExec {
		c.syscall("fcntl(F_SETFD, FD_CLOEXEC)", unix.SYS_FCNTL, wire.Imm(uint64(env.fexec.FD)), wire.Imm(unix.F_SETFD), wire.Imm(unix.FD_CLOEXEC))
	}
	if env.statusFD >= 0 {
		c.syscall("fcntl(F_SETFD, FD_CLOEXEC)", unix.SYS_FCNTL, wire.Imm(uint64(env.statusFD)), wire.Imm(unix.F_SETFD), wire.Imm(unix.FD_CLOEXEC))
	}
	vector := func(ss []string) uint64 {
		vec := c.put(make([]byte, 8*(len(ss)+1)))
		for i, s := range ss {
			str := c.put(append([]byte(s), 0))
			c.emit(wire.Op{Kind: wire.Store, V: [8]wire.Value{wire.At(wire.RData, vec+8*uint64(i)), wire.At(wire.RData, str)}})
		}
		return vec
	}
	name := c.put(append([]byte(path), 0))
	av, ev := vector(argv), vector(envp)
	// The marker lets this exec through the tree's filter: it is the
	// kernel's, and uexec is still waiting for the stub's status.
	if env.fexec != nil {
		c.syscall("execveat "+path, unix.SYS_EXECVEAT, wire.Imm(uint64(env.fexec.FD)), wire.At(wire.RData, c.put([]byte{0})),
			wire.At(wire.RData, av), wire.At(wire.RData, ev), wire.Imm(unix.AT_EMPTY_PATH), wire.Imm(notifyMarker))
		c.note("%s", why)
		c.out.kernel = why
		c.out.prog = &wire.Program{StatusFD: int64(env.statusFD), Ops: c.ops, Data: c.data}
		return c.out, nil
	}
	c.syscall("execve "+path, unix.SYS_EXECVE, wire.At(wire.RData, name), wire.At(wire.RData, av), wire.At(wire.RData, ev),
		wire.Imm(0), wire.Imm(0), wire.Imm(notifyMarker))
	c.note("%s", why)
	c.out.kernel = why
	c.out.prog = &wire.Program{StatusFD: int64(env.statusFD), Ops: c.ops, Data: c.data}
	return c.out, nil
}

// openByName opens the files of env.byName in the stub by their names and
// checks each to be the planned file: a file replaced since it was planned
// kills the process (ESTALE), past the point of no return.
func (c *compiler) openByName() error {
	if len(c.env.byName) == 0 {
		return nil
	}
	st := c.put(make([]byte, 144)) // struct stat
	v, err := c.reg()
	if err != nil {
		return err
	}
	for _, f := range planFileList(c.p) {
		name, ok := c.env.byName[f]
		if !ok {
			continue
		}
		r, err := c.reg()
		if err != nil {
			return err
		}
		o := c.syscall("open "+name, unix.SYS_OPENAT, wire.Imm(uint64(neg(100))), wire.At(wire.RData, c.put(append([]byte(name), 0))),
			wire.Imm(unix.O_RDONLY|unix.O_CLOEXEC))
		o.Dst = r
		o = c.syscall("fstat "+name, unix.SYS_FSTAT, wire.At(r, 0), wire.At(wire.RData, st))
		o.Flags, o.V[6] = wire.FlagExpect, wire.Imm(0)
		for _, chk := range []struct {
			off  uint64
			want uint64
		}{{0, f.Dev}, {8, f.Ino}} {
			c.emit(wire.Op{Kind: wire.Load, Dst: v, V: [8]wire.Value{wire.At(wire.RData, st+chk.off)}})
			c.emit(wire.Op{Kind: wire.Check, V: [8]wire.Value{wire.At(v, 0), wire.Imm(chk.want)}, Name: name + " is the planned file"})
		}
		c.fdv[f] = wire.At(r, 0)
		c.closeFDs = append(c.closeFDs, wire.At(r, 0))
	}
	return nil
}

// checkPins ends the image (ESTALE) unless each file a policy pinned
// (vm.File.Pin: veriexec verified its contents) is still the version it
// read: same size, mtime and ctime through the descriptor it is mapped
// from. It runs after every mapping and after prctl(PR_SET_MM_MAP) has
// made the program the exe_fd (from then on the kernel refuses writers
// with ETXTBSY, kernel/fork.c replace_mm_exe_file), so a write anywhere
// between the policy's read and this point is seen here: the rewritten
// bytes are mapped, but never run.
func (c *compiler) checkPins() error {
	var st uint64
	var v uint8
	for _, f := range planFileList(c.p) {
		if f.Pin == nil {
			continue
		}
		fd, ok := c.fdv[f]
		if !ok {
			return fmt.Errorf("%s was pinned but not passed to the stub: %w", f.Name(), unix.EBADF)
		}
		if v == 0 {
			st = c.put(make([]byte, 144)) // struct stat
			var err error
			if v, err = c.reg(); err != nil {
				return err
			}
		}
		name := f.Name()
		o := c.syscall("fstat "+name, unix.SYS_FSTAT, fd, wire.At(wire.RData, st))
		o.Flags, o.V[6] = wire.FlagExpect, wire.Imm(0)
		// struct stat on x86-64: st_size at 48, st_mtim at 88, st_ctim at 104.
		for _, chk := range []struct {
			off  uint64
			want int64
		}{{48, f.Pin.Size}, {88, f.Pin.Mtime[0]}, {96, f.Pin.Mtime[1]}, {104, f.Pin.Ctime[0]}, {112, f.Pin.Ctime[1]}} {
			c.emit(wire.Op{Kind: wire.Load, Dst: v, V: [8]wire.Value{wire.At(wire.RData, st+chk.off)}})
			c.emit(wire.Op{Kind: wire.Check, V: [8]wire.Value{wire.At(v, 0), wire.Imm(uint64(chk.want))}, Name: name + " is the verified version"})
		}
	}
	return nil
}
