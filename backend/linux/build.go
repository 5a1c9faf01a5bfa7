//go:build linux && amd64

package linux

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/execsw"
	"github.com/uexec/uexec/internal/stub"
	"github.com/uexec/uexec/internal/sys"
	"github.com/uexec/uexec/stack"
	"github.com/uexec/uexec/vm"
)

// remote is what building an image needs of the process it is built in:
// system calls made by that process, and its memory. The ptrace driver
// (internal/tracee) provides it; the builder does not know how the calls
// are carried, so that another driver can reuse it.
type remote interface {
	// Syscall makes the process execute system call nr; an errno result
	// comes back as an error that wraps it.
	Syscall(name string, nr uint64, args ...uint64) (uint64, error)
	WriteMem(addr uint64, b []byte) error
	ReadMem(addr uint64, b []byte) error
	// SetSyscallSite says where an executable `syscall` instruction is.
	SetSyscallSite(addr uint64)
}

// builder turns a stopped stub into the planned image (the second half of
// the seed's execve1, and Linux's load_elf_binary from
// begin_new_exec on). It runs the plan in the order that keeps a `syscall`
// instruction mapped for every step: see run.
type builder struct {
	r        remote
	pid      int
	plan     *execsw.Plan
	noRandom bool
	rand     io.Reader
	logf     func(string, ...any)

	fds     map[*vm.File]int // descriptor of each plan file in the process
	exe     *vm.File         // the program file: /proc/PID/exe
	firstFD int              // fds[*] are firstFD, firstFD+1, ...: closed at the end
	stubSP  uint64           // rsp at the stub's exec stop

	// inPlace says the stub replaced a caller's image (tree mode): the
	// caller's death signal stays, as a kernel exec keeps it, and the
	// plan's descriptors, opened inside the process, are closed one by
	// one.
	inPlace bool

	// Set as the build goes.
	step       string
	destroyed  bool // the point of no return is behind
	notes      []string
	moved      map[vm.Addr]vm.Addr
	entry, sp  vm.Addr
	vdso       vm.Addr
	stackStart vm.Addr // the [stack] mapping's start once written

	// sigMask, when set, is the signal mask the program starts with.
	sigMask *uint64
}

// setSigMask sets the process's signal mask (rt_sigprocmask SIG_SETMASK),
// with the mask written in the scratch space below the stack and cleared
// after.
func (b *builder) setSigMask(mask uint64, lay *stack.Layout) error {
	low := min(lay.SP, vm.Addr(b.stubSP))
	scratch := (low - scratchLen) &^ 15
	var buf [8]byte
	binary.LittleEndian.PutUint64(buf[:], mask)
	if err := b.r.WriteMem(uint64(scratch), buf[:]); err != nil {
		return err
	}
	if _, err := b.r.Syscall("rt_sigprocmask", unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uint64(scratch), 0, 8); err != nil {
		return err
	}
	return b.r.WriteMem(uint64(scratch), make([]byte, 8))
}

func (b *builder) note(format string, args ...any) {
	b.notes = append(b.notes, fmt.Sprintf(format, args...))
}

func (b *builder) log(format string, args ...any) {
	if b.logf != nil {
		b.logf(format, args...)
	}
}

func (b *builder) at(step string) {
	b.step = step
	b.log("pid %d: %s", b.pid, step)
}

// stubRange is where the stub's own image is mapped.
func stubRange() vm.Range {
	end, _ := vm.Addr(stub.Base + uint64(len(stub.ELF()))).RoundUp()
	return vm.Range{Start: stub.Base, End: end}
}

// cmdRange returns the pages a command touches.
func cmdRange(c vm.Cmd) vm.Range {
	end, _ := c.End()
	if e, ok := end.RoundUp(); ok {
		end = e
	}
	return vm.Range{Start: c.Addr.RoundDown(), End: end}
}

// images splits a command list into images: each FlagBase command starts
// one, and commands before the first belong to an image that does not move.
type image struct {
	first int      // index of its first command
	span  vm.Range // planned pages
	delta uint64   // landed - planned, mod 2^64
}

func splitImages(cmds []vm.Cmd) []image {
	var imgs []image
	for i, c := range cmds {
		r := cmdRange(c)
		if len(imgs) == 0 || c.Flags&vm.FlagBase != 0 {
			imgs = append(imgs, image{first: i, span: r})
			continue
		}
		im := &imgs[len(imgs)-1]
		im.span.Start = min(im.span.Start, r.Start)
		im.span.End = max(im.span.End, r.End)
	}
	return imgs
}

// find returns the image whose planned span holds a.
func findImage(imgs []image, a vm.Addr) *image {
	for i := range imgs {
		if a >= imgs[i].span.Start && a < imgs[i].span.End {
			return &imgs[i]
		}
	}
	return nil
}

// relocate moves a planned address with the image that holds it.
func relocate(imgs []image, a vm.Addr) vm.Addr {
	if im := findImage(imgs, a); im != nil {
		return a + vm.Addr(im.delta)
	}
	return a
}

// programFile is the file /proc/PID/exe should name: the file mapped first
// by the image holding the program's entry (AT_ENTRY), which for a #!
// script is its interpreter and for a dynamic program is not ld.so.
func programFile(p *execsw.Plan) *vm.File {
	imgs := splitImages(p.Cmds)
	entry := p.ELF.Entry
	if entry == 0 {
		entry = p.Entry
	}
	im := findImage(imgs, entry)
	for i, c := range p.Cmds {
		if im != nil && (i < im.first || (i > im.first && findImage(imgs, c.Addr) != im)) {
			continue
		}
		if c.File != nil && (c.Op == vm.OpMap || c.Op == vm.OpRead) {
			return c.File
		}
	}
	return nil
}

// Space the builder keeps below the stack for the prctl arguments.
const scratchLen = 2048

// run builds the image. The order matters:
//
//  1. Everything that can fail without harm is checked first (the stack
//     fits, the plan does not need the stub's pages while it still uses
//     them); after that the process is past the point of no return.
//  2. Injected calls need an executable `syscall` instruction. The stub's
//     own is used while the stub is mapped, then one found in the vdso.
//     If the plan needs the vdso elsewhere (a dynamic program's
//     interpreter goes where the stub's vdso is), the vdso is unmapped
//     first, the image mapped with the stub's instruction, the vdso mapped
//     again where the kernel would have put it, and only then the stub
//     unmapped.
//  3. The stack is written at the top of the stub's own [stack] mapping,
//     which the kernel made: it grows down, is charged to RLIMIT_STACK
//     and keeps its guard gap. It is grown or trimmed to the size the
//     kernel would have given it.
//  4. mm fields, comm, credentials, descriptors.
func (b *builder) run() error {
	p := b.plan
	b.at("reading the stub's address space")
	maps, err := readMaps(b.pid)
	if err != nil {
		return err
	}
	live, err := findSpecial(maps)
	if err != nil {
		return err
	}
	stubR := stubRange()
	haveVDSO := live.vdsoStart != 0
	var vdsoOff uint64
	if haveVDSO {
		text := make([]byte, live.vdsoSpan.End-live.vdsoStart)
		if err := b.r.ReadMem(uint64(live.vdsoStart), text); err != nil {
			return err
		}
		i := bytes.Index(text, []byte{0x0f, 0x05})
		if i < 0 {
			return fmt.Errorf("no syscall instruction in the vdso: %w", unix.ENOEXEC)
		}
		vdsoOff = uint64(i)
	} else {
		b.note("no vdso in this kernel: the stub's page stays mapped and /proc/PID/exe names the stub")
	}

	moveVDSO := false
	for _, c := range p.Cmds {
		fixed := c.Flags&(vm.FlagFixed|vm.FlagRelative) != 0
		if haveVDSO && (cmdRange(c).Overlaps(live.vdsoSpan) || !fixed && !b.noRandom) {
			moveVDSO = true
		}
	}
	if haveVDSO && b.noRandom && p.VvarStart != 0 && p.VvarStart != live.vdsoSpan.Start {
		moveVDSO = true
	}
	if moveVDSO || !haveVDSO {
		for _, c := range p.Cmds {
			if cmdRange(c).Overlaps(stubR) {
				return fmt.Errorf("the image overlaps the stub at %v: %w", stubR.Start, unix.ENOMEM)
			}
		}
	}

	// The stack must fit; the real layout follows once the vdso and the
	// images have landed.
	img := p.Image
	img.Top = live.stack.End
	if _, err := io.ReadFull(b.rand, img.Random[:]); err != nil {
		return fmt.Errorf("AT_RANDOM: %w", err)
	}
	img.Auxv = append([]stack.AuxEntry(nil), p.Image.Auxv...)
	if _, err := stack.Build(&img); err != nil {
		return err
	}

	// The point of no return.
	b.destroyed = true
	b.r.SetSyscallSite(stub.SyscallAddr)
	if p.ELF.ReadImpliesExec {
		b.at("setting READ_IMPLIES_EXEC")
		old, err := b.r.Syscall("personality", unix.SYS_PERSONALITY, sys.PersonalityQuery)
		if err != nil {
			return err
		}
		if _, err := b.r.Syscall("personality", unix.SYS_PERSONALITY, old|sys.READ_IMPLIES_EXEC); err != nil {
			return err
		}
	}
	if moveVDSO {
		b.at("unmapping the vdso")
		if _, err := b.r.Syscall("munmap", unix.SYS_MUNMAP, uint64(live.vdsoSpan.Start), live.vdsoSpan.Len()); err != nil {
			return err
		}
	} else if haveVDSO {
		b.r.SetSyscallSite(uint64(live.vdsoStart) + vdsoOff)
		b.at("unmapping the stub")
		if _, err := b.r.Syscall("munmap", unix.SYS_MUNMAP, uint64(stubR.Start), stubR.Len()); err != nil {
			return err
		}
	}

	b.at("mapping the image")
	landed, err := vm.Run(space{b}, p.Cmds)
	if err != nil {
		return err
	}
	imgs := splitImages(p.Cmds)
	for i := range imgs {
		im := &imgs[i]
		im.delta = uint64(landed[im.first].Addr - p.Cmds[im.first].Addr)
		if im.delta != 0 {
			if b.moved == nil {
				b.moved = map[vm.Addr]vm.Addr{}
			}
			b.moved[im.span.Start] = im.span.Start + vm.Addr(im.delta)
			if b.noRandom {
				b.note("image planned at %v landed at %v", im.span.Start, im.span.Start+vm.Addr(im.delta))
			}
		}
	}

	b.vdso = live.vdsoStart
	if moveVDSO {
		b.at("mapping the vdso")
		var hint uint64
		if b.noRandom {
			hint = uint64(p.VvarStart)
		}
		if _, err := b.r.Syscall("arch_prctl(ARCH_MAP_VDSO_64)", unix.SYS_ARCH_PRCTL, sys.ARCH_MAP_VDSO_64, hint); err != nil {
			return err
		}
		maps, err := readMaps(b.pid)
		if err != nil {
			return err
		}
		now, err := findSpecial(maps)
		if err != nil {
			return err
		}
		if now.vdsoStart == 0 {
			return fmt.Errorf("the vdso did not come back: %w", unix.EFAULT)
		}
		if b.noRandom && p.VvarStart != 0 && now.vdsoSpan.Start != p.VvarStart {
			b.note("vdso planned at %v landed at %v", p.VvarStart, now.vdsoSpan.Start)
		}
		b.vdso = now.vdsoStart
		b.r.SetSyscallSite(uint64(now.vdsoStart) + vdsoOff)
		b.at("unmapping the stub")
		if _, err := b.r.Syscall("munmap", unix.SYS_MUNMAP, uint64(stubR.Start), stubR.Len()); err != nil {
			return err
		}
	}

	// Addresses that moved with their image.
	progEntry := p.ELF.Entry
	if progEntry == 0 {
		progEntry = p.Entry
	}
	var pd uint64
	if im := findImage(imgs, progEntry); im != nil {
		pd = im.delta
	}
	b.entry = relocate(imgs, p.Entry)
	mm := p.MM
	for _, a := range []*vm.Addr{&mm.StartCode, &mm.EndCode, &mm.StartData, &mm.EndData} {
		*a += vm.Addr(pd)
	}
	// The break follows the program when it was planned after its end
	// (randomised within 1 GiB); a static-pie's break is at
	// ELF_ET_DYN_BASE whatever the program's place.
	if im := findImage(imgs, progEntry); im != nil && mm.StartBrk >= im.span.End && mm.StartBrk-im.span.End <= 1<<30+2*vm.PageSize {
		mm.StartBrk += vm.Addr(pd)
		mm.Brk += vm.Addr(pd)
	}
	for i := range img.Auxv {
		e := &img.Auxv[i]
		switch e.Type {
		case stack.AT_PHDR, stack.AT_ENTRY:
			e.Value += pd
		case stack.AT_BASE:
			if e.Value != 0 {
				e.Value = uint64(relocate(imgs, vm.Addr(e.Value)))
			}
		case stack.AT_SYSINFO_EHDR:
			e.Value = uint64(b.vdso)
		}
	}

	b.at("writing the stack")
	lay, err := stack.Build(&img)
	if err != nil {
		return err
	}
	b.sp = lay.SP
	mm.StartStack = lay.SP
	mm.ArgStart, mm.ArgEnd = lay.ArgStart, lay.ArgEnd
	mm.EnvStart, mm.EnvEnd = lay.EnvStart, lay.EnvEnd
	if err := b.writeStack(live.stack, lay); err != nil {
		return err
	}
	if p.ELF.ExecStack {
		top := live.stack.End
		if _, err := b.r.Syscall("mprotect", unix.SYS_MPROTECT, uint64(b.stackStart), uint64(top-b.stackStart),
			unix.PROT_READ|unix.PROT_WRITE|unix.PROT_EXEC); err != nil {
			return err
		}
	}

	b.at("setting the mm fields and comm")
	if err := b.setMM(&mm, lay); err != nil {
		return err
	}

	if p.Cred.SetID {
		if os.Geteuid() != 0 {
			b.note("set-id bits not applied: that needs a root supervisor")
		} else {
			b.at("setting the credentials")
			c := p.Cred
			if _, err := b.r.Syscall("setresgid", unix.SYS_SETRESGID, uint64(c.GID), uint64(c.EGID), uint64(c.SGID)); err != nil {
				return err
			}
			if _, err := b.r.Syscall("setresuid", unix.SYS_SETRESUID, uint64(c.UID), uint64(c.EUID), uint64(c.SUID)); err != nil {
				return err
			}
		}
	}

	if b.sigMask != nil {
		if err := b.setSigMask(*b.sigMask, lay); err != nil {
			return err
		}
	}

	b.at("closing the plan's descriptors")
	if !b.inPlace || p.Cred.Secure {
		// The death signal guarded the stub's start; the program starts
		// without one, as a fork's child does. A secure exec clears the
		// caller's (fs/exec.c begin_new_exec).
		if _, err := b.r.Syscall("prctl(PR_SET_PDEATHSIG)", unix.SYS_PRCTL, unix.PR_SET_PDEATHSIG, 0); err != nil {
			return err
		}
	}
	if b.inPlace {
		for _, fd := range b.fds {
			if _, err := b.r.Syscall("close", unix.SYS_CLOSE, uint64(fd)); err != nil {
				return err
			}
		}
	} else if len(b.fds) > 0 {
		last := uint64(b.firstFD + len(b.fds) - 1)
		if _, err := b.r.Syscall("close_range", unix.SYS_CLOSE_RANGE, uint64(b.firstFD), last, 0); err != nil {
			return err
		}
	}
	return nil
}

// stackVMA returns where the [stack] mapping of a kernel exec would start
// for a stack top of top.
func (b *builder) stackVMA(top vm.Addr, lay *stack.Layout) vm.Addr {
	if r := b.plan.StackVMA; r.End > r.Start && r.End == b.plan.Layout.StackTop {
		return top - vm.Addr(r.Len())
	}
	// fs/exec.c setup_arg_pages: the string pages plus 128 KiB, at most
	// RLIMIT_STACK.
	const stackExpand = 128 << 10
	start := lay.ArgStart.RoundDown() - stackExpand
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_STACK, &rl) == nil {
		lim := vm.Addr(rl.Cur &^ (vm.PageSize - 1))
		if rl.Cur != unix.RLIM_INFINITY && top-start > lim {
			start = top - lim
		}
	}
	return start
}

// writeStack gives the [stack] mapping the kernel's size for this image
// and writes the stack, clearing what the stub's own stack left below it.
func (b *builder) writeStack(cur vm.Range, lay *stack.Layout) error {
	top := cur.End
	want := b.stackVMA(top, lay)
	low := min(lay.SP, vm.Addr(b.stubSP))
	if s := (low - scratchLen) &^ 15; s < want {
		want = s.RoundDown()
	}
	switch {
	case want < cur.Start:
		// Only a fault grows a stack (GUP and /proc/PID/mem do not): let
		// the process write to the lowest address in a system call.
		if _, err := b.r.Syscall("clock_gettime", unix.SYS_CLOCK_GETTIME, unix.CLOCK_MONOTONIC, uint64(want)); err != nil {
			return fmt.Errorf("growing the stack to %v: %w", want, err)
		}
	case want > cur.Start:
		if _, err := b.r.Syscall("munmap", unix.SYS_MUNMAP, uint64(cur.Start), uint64(want-cur.Start)); err != nil {
			return err
		}
	}
	b.stackStart = want
	buf := make([]byte, top-low)
	copy(buf[lay.SP-low:], lay.Bytes)
	return b.r.WriteMem(uint64(low), buf)
}

// setMM sets the mm fields with prctl(PR_SET_MM, PR_SET_MM_MAP), which
// needs no capability except for exe_fd, then comm with PR_SET_NAME. The
// arguments go in scratch space below the stack, cleared afterwards.
func (b *builder) setMM(mm *execsw.MM, lay *stack.Layout) error {
	low := min(lay.SP, vm.Addr(b.stubSP))
	scratch := (low - scratchLen) &^ 15
	le := binary.LittleEndian
	var auxv []byte
	for _, e := range lay.Auxv {
		auxv = le.AppendUint64(auxv, uint64(e.Type))
		auxv = le.AppendUint64(auxv, e.Value)
	}
	commAddr := scratch + sys.PrctlMMMapSize
	auxvAddr := commAddr + 16
	if uint64(auxvAddr)+uint64(len(auxv)) > uint64(low) {
		return fmt.Errorf("aux vector of %d bytes: %w", len(auxv), unix.E2BIG)
	}
	exeFD := uint32(0xffffffff) // leave /proc/PID/exe alone
	if fd, ok := b.fds[b.exe]; ok && b.exe != nil {
		exeFD = uint32(fd)
	}
	mmMap := func(exe uint32) []byte {
		var m []byte
		for _, a := range []vm.Addr{mm.StartCode, mm.EndCode, mm.StartData, mm.EndData, mm.StartBrk, mm.Brk,
			mm.StartStack, mm.ArgStart, mm.ArgEnd, mm.EnvStart, mm.EnvEnd, auxvAddr} {
			m = le.AppendUint64(m, uint64(a))
		}
		m = le.AppendUint32(m, uint32(len(auxv)))
		return le.AppendUint32(m, exe)
	}
	comm := make([]byte, 16)
	copy(comm[:15], b.plan.Comm)
	blob := append(append(mmMap(exeFD), comm...), auxv...)
	b.log("mm %+v auxv %d bytes exe_fd %d", *mm, len(auxv), int32(exeFD))
	if err := b.r.WriteMem(uint64(scratch), blob); err != nil {
		return err
	}
	_, err := b.r.Syscall("prctl(PR_SET_MM_MAP)", unix.SYS_PRCTL, unix.PR_SET_MM, unix.PR_SET_MM_MAP, uint64(scratch), sys.PrctlMMMapSize)
	if err != nil && exeFD != 0xffffffff && (errors.Is(err, unix.EPERM) || errors.Is(err, unix.EBUSY)) {
		b.note("/proc/PID/exe names the stub, not %s: prctl(PR_SET_MM_MAP) refused exe_fd (%v); it needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE", b.exe.Name(), err)
		if err = b.r.WriteMem(uint64(scratch), mmMap(0xffffffff)); err != nil {
			return err
		}
		_, err = b.r.Syscall("prctl(PR_SET_MM_MAP)", unix.SYS_PRCTL, unix.PR_SET_MM, unix.PR_SET_MM_MAP, uint64(scratch), sys.PrctlMMMapSize)
	}
	if err != nil {
		return err
	}
	if exeFD == 0xffffffff {
		b.note("/proc/PID/exe names the stub: the plan maps no program file")
	}
	if _, err := b.r.Syscall("prctl(PR_SET_NAME)", unix.SYS_PRCTL, unix.PR_SET_NAME, uint64(commAddr)); err != nil {
		return err
	}
	return b.r.WriteMem(uint64(scratch), make([]byte, len(blob)))
}

func randReader(r io.Reader) io.Reader {
	if r == nil {
		return sys.Random
	}
	return r
}
