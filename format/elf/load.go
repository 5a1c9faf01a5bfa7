package elf

import (
	"encoding/binary"
	"fmt"
	"io"
	"slices"

	"github.com/uexec/uexec/internal/sys"
	"github.com/uexec/uexec/vm"
)

// Address-space constants of x86 Linux that decide where images go.
const (
	// ETDynBase64 is ELF_ET_DYN_BASE for a 64-bit process:
	// DEFAULT_MAP_WINDOW / 3 * 2 with DEFAULT_MAP_WINDOW = 2^47 - 4096
	// (arch/x86/include/asm/elf.h). A PIE without ASLR lands at its page
	// start, 0x555555554000.
	ETDynBase64 = (1<<47 - vm.PageSize) / 3 * 2
	// ETDynBase32 is the ELF_ET_DYN_BASE that compat_binfmt_elf.c uses
	// for ia32: COMPAT_ELF_ET_DYN_BASE = TASK_UNMAPPED_BASE + 16 MiB,
	// with TASK_UNMAPPED_BASE = PAGE_ALIGN(0xFFFFE000 / 3) = 0x55555000.
	// (asm/elf.h's own ia32 value, 0x400000, is used only by a 32-bit
	// kernel.) A 32-bit PIE without ASLR lands at 0x56555000.
	ETDynBase32 = 0x55555000 + 0x1000000

	// MmapRndBits and MmapRndCompatBits are the defaults of
	// vm.mmap_rnd_bits and vm.mmap_rnd_compat_bits on x86-64: the page
	// randomisation arch_mmap_rnd adds to a PIE's base.
	MmapRndBits       = 28
	MmapRndCompatBits = 8

	// BrkRnd and BrkRndCompat are the ranges arch_randomize_brk spreads
	// the brk start over (randomize_page).
	BrkRnd       = 1 << 30
	BrkRndCompat = 32 << 20
)

// placement is how a mapping's address is chosen (the MAP_* flags
// binfmt_elf passes).
type placement int

const (
	placeHint      placement = iota // no MAP_FIXED: addr is a hint, else top-down
	placeNoReplace                  // MAP_FIXED_NOREPLACE
	placeFixed                      // MAP_FIXED
)

// loader plans the vm commands of one exec: the program, then its
// interpreter.
type loader struct {
	space    *vm.Layout
	taskSize uint64
	is32     bool
	rie      bool // READ_IMPLIES_EXEC
	random   bool // PF_RANDOMIZE (and randomize_va_space 2)
	rand     io.Reader
	cmds     []vm.Cmd
	// commitPages is the most pages one accountable mapping may charge;
	// 0 is no limit (execsw.Machine.CommitPages).
	commitPages uint64
	// alignLarge: the kernel places a file mapping of 2 MiB or more of
	// the image being loaded at a 2 MiB boundary
	// (execsw.Machine.AlignLarge).
	alignLarge bool
	// stack is the new [stack] mapping, there before the segments.
	stack vm.Range

	// The image being loaded.
	relocatable bool       // ET_DYN: first command FlagBase, the rest FlagRelative
	nimg        int        // commands of this image so far
	mapped      []vm.Range // what this image maps, sorted, disjoint
}

func newLoader(space *vm.Layout, is32, rie, random bool, rnd io.Reader) *loader {
	if space == nil {
		space = &vm.Layout{TaskSize: vm.TaskSize64, MmapBase: vm.TaskSize64, MinAddr: vm.MmapMinAddr}
	}
	ts := uint64(vm.TaskSize64)
	if is32 {
		ts = uint64(vm.TaskSize32)
	}
	if space.TaskSize != 0 && uint64(space.TaskSize) < ts {
		ts = uint64(space.TaskSize)
	}
	if rnd == nil {
		rnd = sys.Random
	}
	return &loader{space: space, taskSize: ts, is32: is32, rie: rie, random: random, rand: rnd}
}

func fatalf(format string, args ...any) error {
	return &FormatError{Reason: fmt.Sprintf(format, args...), Err: ErrFatal}
}

func pageStart(a uint64) uint64  { return a &^ (vm.PageSize - 1) }
func pageOffset(a uint64) uint64 { return a & (vm.PageSize - 1) }

// pageAlign rounds a up to a page; ok is false on overflow.
func pageAlign(a uint64) (uint64, bool) {
	r, ok := vm.Addr(a).RoundUp()
	return uint64(r), ok
}

func add(a, b uint64) (uint64, bool) {
	s, ok := vm.Addr(a).Add(b)
	return uint64(s), ok
}

// randomLong is get_random_long.
func (l *loader) randomLong() uint64 {
	if u, ok := l.rand.(interface{ Uint64() uint64 }); ok {
		// The planner's pool: no allocation, no system call.
		return u.Uint64()
	}
	var b [8]byte
	if _, err := io.ReadFull(l.rand, b[:]); err != nil {
		return 0
	}
	return binary.LittleEndian.Uint64(b[:])
}

// mmapRnd is x86 arch_mmap_rnd: random pages, 28 bits of them for a 64-bit
// process, 8 for ia32.
func (l *loader) mmapRnd() uint64 {
	bits := uint(MmapRndBits)
	if l.is32 {
		bits = MmapRndCompatBits
	}
	return (l.randomLong() & (1<<bits - 1)) << 12
}

// randomizePage is mm/util.c randomize_page: a random page in
// [start, start+rng).
func (l *loader) randomizePage(start, rng uint64) uint64 {
	if pageOffset(start) != 0 {
		a, ok := pageAlign(start)
		if !ok {
			return start
		}
		rng -= a - start
		start = a
	}
	if start > ^uint64(0)-rng {
		rng = ^uint64(0) - start
	}
	rng >>= 12
	if rng == 0 {
		return start
	}
	return start + (l.randomLong()%rng)<<12
}

func (l *loader) etDynBase() uint64 {
	if l.is32 {
		return ETDynBase32
	}
	return ETDynBase64
}

// prot is make_prot: PF_* to PROT_*, with READ_IMPLIES_EXEC adding exec to
// readable mappings as do_mmap does.
func (l *loader) prot(f ProgFlag) vm.Prot {
	var p vm.Prot
	if f&PF_R != 0 {
		p |= vm.ProtRead
	}
	if f&PF_W != 0 {
		p |= vm.ProtWrite
	}
	if f&PF_X != 0 {
		p |= vm.ProtExec
	}
	if l.rie && p&vm.ProtRead != 0 {
		p |= vm.ProtExec
	}
	return p
}

// beginImage starts a new image's commands.
func (l *loader) beginImage(relocatable bool) {
	l.relocatable = relocatable
	l.nimg = 0
	l.mapped = nil
}

// endImage records the image's mappings as used in the layout, so that
// later top-down placements (the interpreter, the vdso) avoid them.
func (l *loader) endImage() {
	for _, r := range l.mapped {
		l.space.Take(r)
	}
	l.mapped = nil
}

// emit appends c with the image's flags: an ET_EXEC image's commands are
// all fixed; an ET_DYN image's first command is its base (fixed when
// Linux maps it MAP_FIXED or MAP_FIXED_NOREPLACE) and the rest move with it.
func (l *loader) emit(c vm.Cmd, fixedBase bool) {
	switch {
	case !l.relocatable:
		c.Flags |= vm.FlagFixed
	case l.nimg == 0:
		c.Flags |= vm.FlagBase
		if fixedBase {
			c.Flags |= vm.FlagFixed
		}
	default:
		c.Flags |= vm.FlagRelative
	}
	l.nimg++
	l.cmds = append(l.cmds, c)
	r := vm.Range{Start: c.Addr, End: c.Addr + vm.Addr(c.Len)}
	switch c.Op {
	case vm.OpMap, vm.OpZero, vm.OpReserve:
		l.mapped = rangeAdd(l.mapped, r)
	case vm.OpUnmap:
		l.mapped = rangeSub(l.mapped, r)
	}
}

// free reports whether r overlaps nothing mapped.
func (l *loader) free(r vm.Range) bool {
	for _, u := range l.space.Used {
		if u.Overlaps(r) {
			return false
		}
	}
	for _, u := range l.mapped {
		if u.Overlaps(r) {
			return false
		}
	}
	return true
}

// place chooses the address of a new mapping of n bytes (n page aligned,
// not 0) of the image's file at offset off, as do_mmap and
// get_unmapped_area do.
func (l *loader) place(addr, n, off uint64, pl placement) (uint64, error) {
	if n > l.taskSize {
		return 0, fatalf("mapping of %#x bytes exceeds TASK_SIZE %#x (ENOMEM)", n, l.taskSize)
	}
	if pl == placeHint {
		if a, ok := l.placeLarge(addr, n, off); ok {
			return a, nil
		}
		if r := (vm.Range{Start: vm.Addr(addr), End: vm.Addr(addr + n)}); addr != 0 && addr <= l.taskSize-n && addr >= uint64(l.space.MinAddr) && l.free(r) && !l.space.InStackGap(r) {
			return addr, nil
		}
		a, ok := l.space.Place(n, vm.PageSize)
		if !ok || uint64(a) > l.taskSize-n {
			return 0, fatalf("no room for a mapping of %#x bytes (ENOMEM)", n)
		}
		return uint64(a), nil
	}
	if addr > l.taskSize-n {
		return 0, fatalf("mapping [%#x, +%#x) is beyond TASK_SIZE %#x (ENOMEM)", addr, n, l.taskSize)
	}
	if err := l.checkMinAddr("mapping", addr); err != nil {
		return 0, err
	}
	if r := (vm.Range{Start: vm.Addr(addr), End: vm.Addr(addr + n)}); pl == placeNoReplace && (!l.free(r) || r.Overlaps(l.stack)) {
		return 0, fatalf("mapping [%#x, +%#x) overlaps an existing mapping (EEXIST)", addr, n)
	}
	return addr, nil
}

// placeLarge is __thp_get_unmapped_area for a 64-bit image whose file's
// large mappings the kernel aligns: it finds room for n plus 2 MiB (at the
// hint if that much is free there), then moves up to the first address
// congruent to off modulo 2 MiB, and, top-down, by a whole 2 MiB when the
// room found already was. ok is false when the kernel would fall back to
// the plain placement: a 32-bit image, a mapping that covers no whole
// aligned 2 MiB of the file, or no room for the padding.
//
// The checks are the kernel's C, in its types: off is a loff_t, and
// round_up of an offset in the last 2 MiB below 2^63 wraps to a negative
// off_align, which lets a mapping of any size through to the alignment
// (measured; fuzzer seed 89, mutant 2220).
func (l *loader) placeLarge(addr, n, off uint64) (uint64, bool) {
	const size = 2 << 20
	if !l.alignLarge || l.is32 {
		return 0, false
	}
	o := int64(off)                                           // loff_t off
	offEnd := int64(off + n)                                  // loff_t off_end = off + len
	offAlign := ((o - 1) | (size - 1)) + 1                    // round_up(off, size), wrapping
	if offEnd <= offAlign || uint64(offEnd-offAlign) < size { // loff_t < unsigned long: unsigned
		return 0, false
	}
	pad := n + size
	if pad < n || off+pad < off || pad > l.taskSize {
		return 0, false
	}
	if r := (vm.Range{Start: vm.Addr(addr), End: vm.Addr(addr + pad)}); addr != 0 && addr <= l.taskSize-pad && addr >= uint64(l.space.MinAddr) && l.free(r) && !l.space.InStackGap(r) {
		return addr, true
	}
	a, ok := l.space.Place(pad, vm.PageSize)
	if !ok || uint64(a) > l.taskSize-pad {
		return 0, false
	}
	ret := uint64(a)
	sub := (off - ret) & (size - 1)
	if sub == 0 && !l.space.Legacy {
		return ret + size, true // MMF_TOPDOWN
	}
	return ret + sub, true
}

// checkMinAddr is security_mmap_addr on a fixed mapping at addr
// (cap_mmap_addr): below vm.mmap_min_addr, EPERM unless the credentials
// exec installed in begin_new_exec hold CAP_SYS_RAWIO.
func (l *loader) checkMinAddr(what string, addr uint64) error {
	if addr >= uint64(l.space.MinAddr) || l.space.RawIO {
		return nil
	}
	return fatalf("%s at %#x is below mmap_min_addr %#x without CAP_SYS_RAWIO (EPERM)", what, addr, uint64(l.space.MinAddr))
}

// account is security_vm_enough_memory_mm on an accountable mapping of n
// bytes at addr (the bss of vm_brk_flags, a private writable file
// mapping in mmap_region): more pages than the machine may commit is
// ENOMEM (mm/util.c __vm_enough_memory; with vm.overcommit_memory 0 the
// limit is RAM plus swap for each mapping on its own).
func (l *loader) account(what string, addr, n uint64) error {
	if l.commitPages == 0 || n/vm.PageSize <= l.commitPages {
		return nil
	}
	return fatalf("%s [%#x, +%#x) needs %d pages, more than the %d the machine may commit (ENOMEM)", what, addr, n, n/vm.PageSize, l.commitPages)
}

// maxLFSFileSize is MAX_LFS_FILESIZE on 64-bit: the largest offset a
// regular file may be mapped at (file_mmap_size_max).
const maxLFSFileSize = 1<<63 - 1

const pageShift = 12 // PAGE_SHIFT

// errValues is (unsigned long)-MAX_ERRNO: IS_ERR_VALUE(x) is x >= it.
const errValues = ^uint64(4095 - 1)

// elfMap is binfmt_elf elf_map: map p's file pages at addr. With total
// (the first segment of an ET_DYN image), Linux maps total bytes so that
// the whole image fits, then unmaps what lies beyond this segment: here a
// reservation of the span, the segment mapped over it, and the rest
// unmapped (the holes of the image stay unmapped).
func (l *loader) elfMap(f *vm.File, addr uint64, p Prog, prot vm.Prot, pl placement, total uint64) (uint64, error) {
	// size = ELF_PAGEALIGN(p_filesz + ELF_PAGEOFFSET(p_vaddr)), modulo
	// 2^64 as in C: a p_filesz within a page of 2^64 wraps to 0, and
	// elf_map then maps nothing and returns the address (fuzzer seed
	// 1002, mutant 22816).
	size := (p.Filesz + pageOffset(p.Vaddr) + vm.PageSize - 1) &^ (vm.PageSize - 1)
	off := p.Off - pageOffset(p.Vaddr) // wraps as in C; rejected below
	addr = pageStart(addr)
	if size == 0 {
		return addr, nil
	}
	var ok bool
	n := size
	if total != 0 {
		if n, ok = pageAlign(total); !ok {
			return 0, fatalf("image span of %#x bytes overflows", total)
		}
	}
	// vm_mmap: the file offset must be page aligned (p_offset congruent
	// to p_vaddr modulo the page size) and offset+len must not wrap.
	if pageOffset(off) != 0 {
		return 0, fatalf("segment %v: p_offset is not congruent to p_vaddr modulo the page size (EINVAL)", p)
	}
	if _, ok := add(off, n); !ok {
		return 0, fatalf("segment %v: file offset + length overflows (EINVAL)", p)
	}
	// do_mmap, file_mmap_ok: the mapping must end within
	// MAX_LFS_FILESIZE (EOVERFLOW), a p_offset near 2^63 does not.
	if n > maxLFSFileSize || off>>pageShift > (maxLFSFileSize-n)>>pageShift {
		return 0, fatalf("segment %v: file offset %#x + length %#x exceeds MAX_LFS_FILESIZE (EOVERFLOW)", p, off, n)
	}
	a, err := l.place(addr, n, off, pl)
	if err != nil {
		return 0, err
	}
	if prot&vm.ProtWrite != 0 {
		// A private writable mapping is charged in full, the span of
		// an ET_DYN image included.
		if err := l.account("segment", a, n); err != nil {
			return 0, err
		}
	}
	fixedBase := pl != placeHint
	if total != 0 {
		l.emit(vm.Cmd{Op: vm.OpReserve, Addr: vm.Addr(a), Len: n}, fixedBase)
	}
	// Linux maps n file bytes and unmaps those beyond size; when size
	// exceeds n (p_filesz > p_memsz) that unmap fails and n stay mapped.
	l.emit(vm.Cmd{Op: vm.OpMap, Addr: vm.Addr(a), Len: min(size, n), Prot: prot, Offset: off, File: f}, fixedBase)
	if n > size {
		l.emit(vm.Cmd{Op: vm.OpUnmap, Addr: vm.Addr(a + size), Len: n - size}, fixedBase)
	}
	return a, nil
}

// elfLoad is binfmt_elf elf_load: map p's file part, zero the rest of its
// last file page (padzero) and map anonymous pages for the rest of p_memsz.
func (l *loader) elfLoad(f *vm.File, addr uint64, p Prog, prot vm.Prot, pl placement, total uint64) (uint64, error) {
	var mapAddr, zeroStart, zeroEnd uint64
	var ok1, ok2 bool
	if p.Filesz != 0 {
		var err error
		if mapAddr, err = l.elfMap(f, addr, p, prot, pl, total); err != nil {
			return 0, err
		}
		if mapAddr >= l.taskSize {
			return mapAddr, nil // BAD_ADDR: no bss; the caller decides
		}
		if p.Memsz > p.Filesz {
			base := mapAddr + pageOffset(p.Vaddr) // mapAddr < TASK_SIZE: no wrap
			zeroStart, ok1 = add(base, p.Filesz)
			zeroEnd, ok2 = add(base, p.Memsz)
			if !ok1 || !ok2 {
				return 0, fatalf("segment %v: end overflows", p)
			}
			// padzero: clear_user to the end of the page. It fails,
			// and Linux ignores the failure, when the segment is
			// not writable: the file's bytes stay visible there.
			if off := pageOffset(zeroStart); off != 0 && prot&vm.ProtWrite != 0 {
				// Linux 6.18 elf_load: a writable segment whose
				// padzero fails is -EFAULT. clear_user faults
				// when the page lies wholly beyond the end of
				// the file (filemap_fault: SIGBUS).
				if pgoff := (p.Off - pageOffset(p.Vaddr) + pageStart(zeroStart) - mapAddr) >> pageShift; f != nil && f.Size > 0 && pgoff >= (uint64(f.Size)+vm.PageSize-1)>>pageShift {
					return 0, fatalf("segment %v: the page of its bss start lies beyond the end of the file; padzero faults (EFAULT)", p)
				}
				l.emit(vm.Cmd{Op: vm.OpClear, Addr: vm.Addr(zeroStart), Len: vm.PageSize - off, Prot: prot}, false)
			}
		}
	} else {
		mapAddr = pageStart(addr)
		zeroStart = mapAddr
		var ok bool
		if zeroEnd, ok = add(zeroStart, pageOffset(p.Vaddr)); ok {
			zeroEnd, ok = add(zeroEnd, p.Memsz)
		}
		if !ok {
			return 0, fatalf("segment %v: end overflows", p)
		}
	}
	if p.Memsz > p.Filesz {
		zs, ok1 := pageAlign(zeroStart)
		ze, ok2 := pageAlign(zeroEnd)
		if !ok1 || !ok2 {
			return 0, fatalf("segment %v: bss end overflows", p)
		}
		if ze > zs {
			// vm_brk_flags: an anonymous read-write mapping,
			// executable if the segment is (or READ_IMPLIES_EXEC),
			// at exactly this address.
			n := ze - zs
			if n > l.taskSize || zs > l.taskSize-n {
				return 0, fatalf("bss [%#x, %#x) is beyond TASK_SIZE %#x (ENOMEM)", zs, ze, l.taskSize)
			}
			if err := l.checkMinAddr("bss", zs); err != nil {
				return 0, err
			}
			if err := l.account("bss", zs, n); err != nil {
				return 0, err
			}
			bp := vm.ProtRead | vm.ProtWrite
			if prot&vm.ProtExec != 0 || l.rie {
				bp |= vm.ProtExec
			}
			// A first segment without file bytes is not placed by
			// the kernel (elf_load maps nothing, map_addr is the
			// address asked): its bss is at that address, fixed.
			l.emit(vm.Cmd{Op: vm.OpZero, Addr: vm.Addr(zs), Len: n, Prot: bp}, pl != placeHint || p.Filesz == 0)
		}
	}
	return mapAddr, nil
}

// totalMappingSize is binfmt_elf total_mapping_size: from the page start
// of the lowest PT_LOAD to the end of the highest (computed modulo 2^64 as
// in C; absurd segments are rejected later). 0 without PT_LOAD.
func totalMappingSize(progs []Prog) uint64 {
	minAddr, maxAddr := ^uint64(0), uint64(0)
	found := false
	for _, p := range progs {
		if p.Type == PT_LOAD {
			minAddr = min(minAddr, pageStart(p.Vaddr))
			maxAddr = max(maxAddr, p.Vaddr+p.Memsz)
			found = true
		}
	}
	if !found {
		return 0
	}
	return maxAddr - minAddr
}

// maximumAlignment is binfmt_elf maximum_alignment: the largest
// power-of-two p_align of the PT_LOADs, rounded up to a page (0 when none
// is a power of two).
func maximumAlignment(progs []Prog) uint64 {
	var a uint64
	for _, p := range progs {
		if p.Type == PT_LOAD && p.Align != 0 && p.Align&(p.Align-1) == 0 {
			a = max(a, p.Align)
		}
	}
	r, ok := pageAlign(a)
	if !ok {
		return 0
	}
	return r
}

// mainImage is what loading the program produced.
type mainImage struct {
	bias                                   uint64
	entry, phdr                            uint64
	startCode, endCode, startData, endData uint64
	startBrk                               uint64
}

// loadMain maps the program's PT_LOAD segments (the loop of
// load_elf_binary) and computes its entry, AT_PHDR, mm fields and brk.
func (l *loader) loadMain(f *vm.File, h *Header, progs []Prog, hasInterp bool) (*mainImage, error) {
	dyn := h.Type == ET_DYN
	l.beginImage(dyn)
	defer l.endImage()
	var (
		m                                 mainImage
		first                             = true
		bias                              uint64
		elfBrk                            uint64
		startCode                         = ^uint64(0)
		endCode, startData, endData, phdr uint64
		ts                                = l.taskSize
	)
	for _, p := range progs {
		if p.Type != PT_LOAD {
			continue
		}
		prot := l.prot(p.Flags)
		vaddr := p.Vaddr
		pl := placeFixed
		var total uint64
		if first {
			pl = placeNoReplace
			if dyn {
				total = totalMappingSize(progs)
				if total == 0 {
					return nil, fatalf("PT_LOAD segments span 0 bytes (EINVAL)")
				}
				align := maximumAlignment(progs)
				switch {
				case hasInterp:
					// A PIE: ELF_ET_DYN_BASE plus ASLR.
					bias = l.etDynBase()
					if l.random {
						bias += l.mmapRnd()
					}
					if align != 0 {
						bias &^= align - 1
					}
				case align > vm.PageSize && p.Filesz == 0:
					// The same, but elf_load has no file to
					// map: its vm_brk_flags takes the page at 0
					// itself, not a place of the kernel's, and
					// the bias is 0 (EPERM there without
					// CAP_SYS_RAWIO, past the point of no
					// return; seed 61, mutant 4936).
					if pageOffset(p.Vaddr)+p.Memsz > 0 {
						if err := l.checkMinAddr("the probe of a bss-only first segment", 0); err != nil {
							return nil, err
						}
					}
					bias = 0
				case align > vm.PageSize:
					// A loader with large alignment: Linux maps
					// the span at 0 to learn where the kernel
					// would put it, unmaps it, aligns down.
					n, ok := pageAlign(total)
					if !ok {
						return nil, fatalf("image span of %#x bytes overflows", total)
					}
					a, err := l.place(0, n, p.Off-pageOffset(p.Vaddr), placeHint)
					if err != nil {
						return nil, err
					}
					bias = a &^ (align - 1)
				default:
					// A loader: wherever the kernel's mmap puts it.
					bias = 0
					pl = placeHint
				}
				bias = pageStart(bias - vaddr) // wraps as in C
			}
		}
		mapAddr, err := l.elfLoad(f, bias+vaddr, p, prot, pl, total)
		if err != nil {
			return nil, err
		}
		if mapAddr >= ts {
			// BAD_ADDR of what elf_map returned without mapping (a
			// size that wrapped to 0 at an address past TASK_SIZE).
			return nil, fatalf("segment %v: mapped at %#x, beyond TASK_SIZE %#x (EINVAL)", p, mapAddr, ts)
		}
		if first {
			first = false
			if dyn {
				bias += mapAddr - pageStart(bias+vaddr)
			}
		}
		// AT_PHDR: the segment whose file range holds e_phoff.
		if p.Off <= h.Phoff && h.Phoff < p.Off+p.Filesz {
			phdr = h.Phoff - p.Off + p.Vaddr
		}
		k := p.Vaddr
		if p.Flags&PF_X != 0 && k < startCode {
			startCode = k
		}
		if startData < k {
			startData = k
		}
		if k >= ts || p.Filesz > p.Memsz || p.Memsz > ts || ts-p.Memsz < k {
			return nil, fatalf("segment %v: p_filesz > p_memsz or beyond TASK_SIZE %#x (EINVAL)", p, ts)
		}
		k = p.Vaddr + p.Filesz
		if p.Flags&PF_X != 0 && endCode < k {
			endCode = k
		}
		if endData < k {
			endData = k
		}
		if k = p.Vaddr + p.Memsz; k > elfBrk {
			elfBrk = k
		}
	}
	// The mm fields are unsigned long sums in Linux: modulo 2^64.
	m.bias = bias
	m.entry = h.Entry + bias
	m.phdr = phdr + bias
	m.startCode = startCode + bias
	m.endCode = endCode + bias
	m.startData = startData + bias
	m.endData = endData + bias
	elfBrk += bias

	// brk: a loader run directly (ET_DYN without PT_INTERP) gets its brk
	// moved to ELF_ET_DYN_BASE, out of the mmap area (!CONFIG_COMPAT_BRK,
	// Linux 6.15+); with randomize_va_space 2 the brk start moves a page
	// up (unless moved already) and randomly within 1 GiB (32 MiB ia32).
	moved := false
	if dyn && !hasInterp {
		elfBrk = l.etDynBase()
		moved = true
	}
	m.startBrk = (elfBrk + vm.PageSize - 1) &^ (vm.PageSize - 1) // ELF_PAGEALIGN, modulo 2^64
	if l.random {
		if !moved {
			m.startBrk += vm.PageSize
		}
		rng := uint64(BrkRnd)
		if l.is32 {
			rng = BrkRndCompat
		}
		m.startBrk = l.randomizePage(m.startBrk, rng)
	}
	return &m, nil
}

// loadInterp is load_elf_interp: it maps the interpreter's PT_LOAD
// segments, an ET_DYN interpreter wherever the kernel's mmap puts its
// whole span, and returns its load address. noBase is the program's load
// bias.
func (l *loader) loadInterp(f *vm.File, h *Header, progs []Prog, noBase uint64) (uint64, error) {
	if h.Type != ET_EXEC && h.Type != ET_DYN {
		return 0, fatalf("interpreter e_type %v is not ET_EXEC or ET_DYN", h.Type)
	}
	total := totalMappingSize(progs)
	if total == 0 {
		return 0, fatalf("interpreter has no PT_LOAD (EINVAL)")
	}
	dyn := h.Type == ET_DYN
	l.beginImage(dyn)
	defer l.endImage()
	var loadAddr uint64
	set := false
	ts := l.taskSize
	for _, p := range progs {
		if p.Type != PT_LOAD {
			continue
		}
		prot := l.prot(p.Flags)
		vaddr := p.Vaddr
		pl := placeHint
		if !dyn || set {
			pl = placeFixed
		} else if noBase != 0 {
			loadAddr = -vaddr // the hint becomes 0: top-down
		}
		mapAddr, err := l.elfLoad(f, loadAddr+vaddr, p, prot, pl, total)
		total = 0
		if err != nil {
			return 0, err
		}
		if mapAddr >= ts {
			// load_elf_interp returns a BAD_ADDR map address as its
			// result ("error = map_addr; goto out"), and its caller
			// takes anything that is not an errno value for the load
			// address: elf_map maps nothing and returns the address
			// when the size wraps to 0, so an address past TASK_SIZE
			// below -4095 becomes AT_BASE (Linux 6.18).
			if mapAddr < errValues {
				return mapAddr, nil
			}
			return 0, fatalf("interpreter segment %v: mapped at %#x, an errno value (EINVAL)", p, mapAddr)
		}
		if !set && dyn {
			loadAddr = mapAddr - pageStart(vaddr)
			set = true
		}
		k := loadAddr + p.Vaddr
		if k >= ts || p.Filesz > p.Memsz || p.Memsz > ts || ts-p.Memsz < k {
			return 0, fatalf("interpreter segment %v: p_filesz > p_memsz or beyond TASK_SIZE %#x (ENOMEM)", p, ts)
		}
	}
	return loadAddr, nil
}

// rangeAdd adds r to the sorted disjoint set s, in place.
func rangeAdd(s []vm.Range, r vm.Range) []vm.Range {
	if r.End <= r.Start {
		return s
	}
	// s[lo:hi] are the ranges r touches; they merge into one.
	lo := 0
	for lo < len(s) && s[lo].End < r.Start {
		lo++
	}
	hi := lo
	for hi < len(s) && s[hi].Start <= r.End {
		r.Start = min(r.Start, s[hi].Start)
		r.End = max(r.End, s[hi].End)
		hi++
	}
	if lo == hi {
		s = slices.Insert(s, lo, r)
		return s
	}
	s[lo] = r
	return slices.Delete(s, lo+1, hi)
}

// rangeSub removes r from the sorted disjoint set s.
func rangeSub(s []vm.Range, r vm.Range) []vm.Range {
	out := make([]vm.Range, 0, len(s)+1)
	for _, x := range s {
		if !x.Overlaps(r) {
			out = append(out, x)
			continue
		}
		if x.Start < r.Start {
			out = append(out, vm.Range{Start: x.Start, End: r.Start})
		}
		if r.End < x.End {
			out = append(out, vm.Range{Start: r.End, End: x.End})
		}
	}
	return out
}
