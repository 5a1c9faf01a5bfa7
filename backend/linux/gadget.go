//go:build linux && amd64

package linux

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/execsw"
	"github.com/uexec/uexec/stack"
	"github.com/uexec/uexec/vm"
)

// The stub's last `ret` can enter the program through bytes of the new
// image itself that set rflags to the kernel's 0x202, instead of the 0x246
// that the register clears before that `ret` leave (see internal/planstub):
//   - `popfq; ret` (9d c3), with 0x202 on the stack for popfq: glibc's
//     ld.so has one, so every dynamic glibc program, and a Go program's
//     runtime;
//   - `add $imm8, %rsp`, up to three pops and `ret` (48 83 c4 ib ... c3),
//     a common function epilogue (a static C program has dozens), with
//     zeros on the stack for what it pops: the add sets every status
//     flag from its result, the stack pointer, so whether it leaves 0x202
//     depends on the parity of that address's low byte and a carry out of
//     bit 3. Epilogues of pop counts 2m and 2m+1 leave results 8 bytes
//     apart from the same initial stack pointer (16-byte aligned), of
//     opposite parity: with both, one of them gives 0x202 for any stack.
// The vdso has neither.

// gadgetMaxScan bounds how much of one executable mapping is searched
// (once per file and range: gadgetCache): ld.so has its `popfq; ret` ~100
// KiB in, a Go program's runtime ~350 KiB in.
const gadgetMaxScan = 512 << 10

// gadgetOffs are, for one executable range of a file, the offsets from its
// start of its first `popfq; ret` ([0]) and of its first `add $imm8, %rsp;
// pop...; ret` with p pops ([1+p]) that fits the 8 bytes the stub checks;
// -1 where there is none.
type gadgetOffs [1 + maxPops + 1]int64

const maxPops = 3

// gadgetCache holds, for each executable range searched, its gadgetOffs
// and the bytes last read there.
var gadgetCache sync.Map // gadgetKey -> gadgetHit

// gadgetHit is what gadgetCache holds for a range: its gadgets' offsets,
// and their bytes as read at a time (read, in ns).
type gadgetHit struct {
	offs  gadgetOffs
	bytes [len(gadgetOffs{})][8]byte
	read  int64
}

// gadgetSettled: bytes read more than this after their version's ctime
// are used again without reading the file. A change of the bytes is a
// write, which sets mtime and ctime to its time as the file system's clock
// counts it (in jiffies, up to 10 ms, without fine-grained timestamps): a
// write after such a read makes another version. (The exec refuses a file
// open for writing, ETXTBSY, and the stub checks the bytes again before it
// uses them.)
const gadgetSettled = int64(time.Second)

// settled says whether h's bytes are those of every file of the version
// whose ctime (ns) is ctime.
func (h gadgetHit) settled(ctime int64) bool { return h.read-ctime > gadgetSettled }

type gadgetKey struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64 // ns: a file changed in place is searched again
	off, n       uint64
}

// A flagsGadget is where the stub's last `ret` goes first: the planned
// address of the image's bytes and the 8 bytes there (which the stub checks
// before it uses them: the file could have changed in place); a `popfq;
// ret`, or an `add $imm, %rsp` and pops.
type flagsGadget struct {
	at        vm.Addr
	want      uint64
	popf      bool
	imm, pops int
}

// words is how many words the gadget pops before its `ret` into the entry.
func (g flagsGadget) words() int {
	if g.popf {
		return 1
	}
	return g.imm/8 + g.pops
}

// fill is what the stub stores in those words: rflags for popfq, zeros for
// the add's skip and the registers popped.
func (g flagsGadget) fill() uint64 {
	if g.popf {
		return 0x202
	}
	return 0
}

// flagsAt is rflags after g enters the program with the stack pointer sp
// (the stub's register clears leave 0x246 before it).
func (g flagsGadget) flagsAt(sp vm.Addr) uint64 {
	if g.popf {
		return 0x202
	}
	// The pops leave rsp at sp - 8, before the ret into the entry.
	result := uint64(sp) - 8*uint64(g.pops+1)
	return 0x202 | addFlags(result-uint64(g.imm), uint64(g.imm))
}

// index is where in gadgetOffs a gadget of g's kind goes.
func (g flagsGadget) index() int {
	if g.popf {
		return 0
	}
	return 1 + g.pops
}

// decodeGadget says what the 8 bytes b at a gadget's address are, if one.
// Of the epilogues, only those that can leave 0x202 for a 16-byte aligned
// initial stack pointer are: with an odd number of pops, an imm of 8 mod 16
// always carries out of bit 3 (AF).
func decodeGadget(b []byte) (g flagsGadget, ok bool) {
	if len(b) < 8 {
		return g, false
	}
	if b[0] == 0x9d && b[1] == 0xc3 {
		return flagsGadget{popf: true}, true
	}
	imm := int(b[3])
	if b[0] != 0x48 || b[1] != 0x83 || b[2] != 0xc4 || imm == 0 || imm >= 0x80 || imm%8 != 0 {
		return g, false
	}
	pops := 0
	for i := 4; i < 8; i++ {
		switch {
		case b[i] == 0xc3:
			if pops%2 == 1 && imm%16 == 8 {
				return g, false
			}
			return flagsGadget{imm: imm, pops: pops}, true
		case pops == maxPops:
			return g, false
		case b[i] >= 0x58 && b[i] <= 0x5f && b[i] != 0x5c: // pop r64, not rsp
			pops++
		case b[i] == 0x41 && i+1 < 8 && b[i+1] >= 0x58 && b[i+1] <= 0x5f: // pop r8..r15
			pops++
			i++
		default:
			return g, false
		}
	}
	return g, false
}

// addFlags returns the status flags (CF PF AF ZF SF OF) that `add b, a`
// leaves.
func addFlags(a, b uint64) uint64 {
	r := a + b
	var f uint64
	if r < a {
		f |= 0x1
	}
	if bits.OnesCount8(uint8(r))%2 == 0 {
		f |= 0x4
	}
	if (a^b^r)&0x10 != 0 {
		f |= 0x10
	}
	if r == 0 {
		f |= 0x40
	}
	if r>>63 != 0 {
		f |= 0x80
	}
	if (^(a^b)&(a^r))>>63 != 0 {
		f |= 0x800
	}
	return f
}

// findFlagsGadget returns the gadget the stub enters the program through
// for the planned initial stack pointer sp, in an executable file mapping
// of plan where no later command of the plan maps over or clears its 8
// bytes: a `popfq; ret` first, else an epilogue that leaves 0x202 for sp.
// sp's page offset is the running stack's (the stub moves the stack by
// whole pages), so alignedSP false (a plan's stack top inside a page) allows
// `popfq; ret` only. ok is false when the image has none.
func findFlagsGadget(plan *execsw.Plan, sp vm.Addr, alignedSP bool) (g flagsGadget, ok bool) {
	// The interpreter first: one ld.so serves every dynamic program.
	var prog *vm.File
	for _, cmd := range plan.Cmds {
		if cmd.Op == vm.OpMap && prog == nil {
			prog = cmd.File
		}
	}
	cands := gadgetCands(plan)
	for _, popf := range []bool{true, false} {
		if !popf && !alignedSP {
			break
		}
		for pass := range 2 {
			for _, c := range cands {
				if (c.f != prog) == (pass == 0) && c.g.popf == popf && c.g.flagsAt(sp) == 0x202 {
					return c.g, true
				}
			}
		}
	}
	return g, false
}

// gadgetCand is a gadget of a plan's file f, at its planned address.
type gadgetCand struct {
	g flagsGadget
	f *vm.File
}

// gadgetCands returns the gadgets of plan's executable file mappings that
// no later command of the plan maps over or clears, in the plan's order:
// each range searched (or its cached offsets checked) and each gadget's
// bytes read once for every pass of findFlagsGadget.
func gadgetCands(plan *execsw.Plan) []gadgetCand {
	var out []gadgetCand
	for i, cmd := range plan.Cmds {
		// Readable too: the stub reads the bytes first, and an
		// execute-only mapping (PROT_EXEC alone, with protection keys)
		// faults on a read.
		if cmd.Op != vm.OpMap || cmd.Prot&vm.ProtExec == 0 || cmd.Prot&vm.ProtRead == 0 || cmd.File == nil ||
			cmd.Offset >= uint64(cmd.File.Size) {
			continue
		}
		n := min(cmd.Len, uint64(cmd.File.Size)-cmd.Offset, gadgetMaxScan)
		offs, bytes, ok := gadgetsIn(cmd.File, cmd.Offset, n)
		if !ok {
			continue
		}
		for k, off := range offs {
			if off < 0 || uint64(off)+8 > n {
				continue
			}
			g, ok := decodeGadget(bytes[k][:])
			if !ok {
				continue
			}
			r := vm.Range{Start: cmd.Addr + vm.Addr(off), End: cmd.Addr + vm.Addr(off) + 8}
			later := false
			for _, c := range plan.Cmds[i+1:] {
				if (vm.Range{Start: c.Addr, End: c.Addr + vm.Addr(c.Len)}).Overlaps(r) {
					later = true
				}
			}
			if !later {
				g.at, g.want = r.Start, binary.LittleEndian.Uint64(bytes[k][:])
				out = append(out, gadgetCand{g, cmd.File})
			}
		}
	}
	return out
}

// planSP is the initial stack pointer plan lays out, and whether the
// running one has the same page offset (a page-aligned stack top: the stub
// moves the stack by its own top minus the plan's).
func planSP(plan *execsw.Plan) (vm.Addr, bool) {
	img := plan.Image
	img.Auxv = slices.Clone(plan.Image.Auxv)
	lay, err := stack.Build(&img)
	if err != nil {
		return 0, false
	}
	return lay.SP, img.Top%vm.PageSize == 0
}

// gadgetsIn returns the gadgetOffs of the n bytes of f at off, and the 8
// bytes at each offset that is not -1: those of this process's cache for
// f's version, or read from f now, where offsets found earlier (the disk
// cache's) are used only while each is still a gadget of its kind there.
func gadgetsIn(f *vm.File, off, n uint64) (gadgetOffs, [len(gadgetOffs{})][8]byte, bool) {
	var bytes [len(gadgetOffs{})][8]byte
	key := gadgetKey{dev: f.Dev, ino: f.Ino, size: f.Size, off: off, n: n}
	fd, ok := f.R.(interface{ Fd() uintptr })
	if !ok {
		return gadgetOffs{}, bytes, false
	}
	if v := f.Opened; v.Ctime != [2]int64{} && v.Size == f.Size {
		key.mtime, key.ctime = v.Mtime[0]*1e9+v.Mtime[1], v.Ctime[0]*1e9+v.Ctime[1]
	} else {
		var st unix.Stat_t
		if unix.Fstat(int(fd.Fd()), &st) != nil {
			return gadgetOffs{}, bytes, false
		}
		key.mtime, key.ctime = st.Mtim.Nano(), st.Ctim.Nano()
	}
	// Offsets found earlier are used while each is still a gadget of its
	// kind there: those of a version not settled, or the disk cache's.
	var known gadgetOffs
	v, found := gadgetCache.Load(key)
	if found {
		h := v.(gadgetHit)
		if h.settled(key.ctime) {
			return h.offs, h.bytes, true
		}
		known = h.offs
	} else {
		known, found = gadgetDisk.lookup(key)
	}
	if found {
		if read := time.Now().UnixNano(); readGadgets(f, off, n, known, &bytes) {
			gadgetCache.Store(key, gadgetHit{known, bytes, read})
			return known, bytes, true
		}
	}
	offs := searchGadgets(int(fd.Fd()), off, n)
	gadgetDisk.add(key, offs)
	read := time.Now().UnixNano()
	if !readGadgets(f, off, n, offs, &bytes) {
		return gadgetOffs{}, bytes, false // changed while searched
	}
	gadgetCache.Store(key, gadgetHit{offs, bytes, read})
	return offs, bytes, true
}

// readGadgets reads the 8 bytes at each of offs that is not -1 into bytes
// and reports whether each is still a gadget of the kind its index says in
// f's n bytes at off.
func readGadgets(f *vm.File, off, n uint64, offs gadgetOffs, bytes *[len(gadgetOffs{})][8]byte) bool {
	for i, at := range offs {
		if at < 0 || uint64(at)+8 > n {
			continue // none, or one gadgetCands does not use
		}
		if _, err := f.R.ReadAt(bytes[i][:], int64(off)+at); err != nil {
			return false
		}
		if g, ok := decodeGadget(bytes[i][:]); !ok || g.index() != i {
			return false
		}
	}
	return true
}

// searchGadgets searches the n bytes of file fd at off (a page boundary)
// for gadgets, mapped: the page cache's pages in place, without a copy (a
// dynamic program's ld.so has ~150 KiB of text). A file truncated
// meanwhile faults: the fault panics (debug.SetPanicOnFault) and the
// search finds nothing.
func searchGadgets(fd int, off, n uint64) (offs gadgetOffs) {
	none := gadgetOffs{}
	for i := range none {
		none[i] = -1
	}
	if off%vm.PageSize != 0 {
		return none
	}
	m, err := unix.Mmap(fd, int64(off), int(n), unix.PROT_READ, unix.MAP_PRIVATE)
	if err != nil {
		return none
	}
	defer unix.Munmap(m)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if recover() != nil {
			offs = none
		}
	}()
	offs = none
	offs[0] = int64(bytes.Index(m, []byte{0x9d, 0xc3}))
	if offs[0] >= 0 {
		return offs // preferred: the others are not used
	}
	left := len(offs) - 1
	for at := 0; left > 0; {
		i := bytes.Index(m[at:], []byte{0x48, 0x83, 0xc4})
		if i < 0 {
			break
		}
		at += i
		if g, ok := decodeGadget(m[at:min(at+8, len(m))]); ok && offs[g.index()] < 0 {
			offs[g.index()] = int64(at)
			left--
		}
		at++
	}
	return offs
}
