package vm

import "slices"

// x86-64 address-space constants (Linux arch/x86/include/asm/page_64_types.h,
// processor.h, elf.h).
const (
	// TaskSize64 is TASK_SIZE for a 64-bit process with 4-level paging:
	// the highest user address plus one, minus a guard page.
	TaskSize64 Addr = 1<<47 - PageSize
	// TaskSize32 is TASK_SIZE for an ia32 process (IA32_PAGE_OFFSET).
	TaskSize32 Addr = 0xFFFFE000
	// MmapMinAddr is the default vm.mmap_min_addr on x86.
	MmapMinAddr Addr = 0x10000
	// StackGuardGap is stack_guard_gap: 256 pages.
	StackGuardGap = 256 * PageSize
)

// Layout is the geometry of a new address space: where the stack ends and
// where top-down mmap allocation starts (Linux mm->mmap_base), plus what is
// already taken. Planners use it to predict where the kernel's mmap would put
// an image that is not placed at a fixed address (an interpreter, a
// static-pie program, the vdso).
type Layout struct {
	TaskSize Addr // highest user address + 1
	StackTop Addr // initial stack top (mm->start_stack rounds below it)
	MmapBase Addr // top-down allocations end at or below this
	MinAddr  Addr // mmap_min_addr
	// RawIO: the process holds CAP_SYS_RAWIO, so fixed mappings may
	// start below MinAddr (security/commoncap.c cap_mmap_addr); top-down
	// placement still stops at MinAddr.
	RawIO bool
	// LegacyBase is mm->mmap_legacy_base (TASK_UNMAPPED_BASE plus the
	// random offset), where the bottom-up search of a failed top-down
	// placement starts; 0 means none.
	LegacyBase Addr
	// Legacy is the legacy mmap layout (mmap_is_legacy: personality
	// ADDR_COMPAT_LAYOUT or vm.legacy_va_layout): MmapBase is then
	// LegacyBase, and a mapping without a fixed address goes to the
	// lowest free address above it (arch_get_unmapped_area), never
	// below.
	Legacy bool
	Used   []Range // ranges already taken, kept sorted by Start
	// Stack is the initial [stack] mapping, when known: it grows down,
	// so a mapping placed without MAP_FIXED keeps stack_guard_gap below
	// it as well (vm_start_gap in unmapped_area, unmapped_area_topdown
	// and generic_get_unmapped_area's hint check).
	Stack Range
}

// stackGap returns the stack with the guard gap below it, if Stack is set.
func (l *Layout) stackGap() (Range, bool) {
	g := l.Stack
	if g.End <= g.Start {
		return Range{}, false
	}
	g.Start = Addr(uint64(g.Start) - min(uint64(g.Start), StackGuardGap))
	return g, true
}

// guarded returns the used ranges with the stack and its guard gap.
func (l *Layout) guarded() []Range {
	if g, ok := l.stackGap(); ok {
		return append(slices.Clip(l.Used), g)
	}
	return l.Used
}

// InStackGap reports whether r overlaps the stack or the guard gap below
// it: a hint there is not taken.
func (l *Layout) InStackGap(r Range) bool {
	g, ok := l.stackGap()
	return ok && g.Overlaps(r)
}

// Take records r as used.
func (l *Layout) Take(r Range) {
	l.Used = append(l.Used, r)
	slices.SortFunc(l.Used, Range.Compare)
}

// Free reports whether r lies inside the usable range and overlaps nothing
// taken.
func (l *Layout) Free(r Range) bool {
	if r.Start < l.MinAddr || r.End > l.TaskSize || r.End < r.Start {
		return false
	}
	for _, u := range l.Used {
		if u.Overlaps(r) {
			return false
		}
	}
	return true
}

// TopDown returns the highest address a, aligned to align (a power of two,
// at least a page), such that [a, a+n) is free, ends at or below MmapBase
// and starts at or above MinAddr: what Linux's unmapped_area_topdown
// returns for a new mapping of n bytes without a hint. ok is false when
// nothing fits. Used ranges may overlap one another.
func (l *Layout) TopDown(n, align uint64) (a Addr, ok bool) {
	if align < PageSize {
		align = PageSize
	}
	if n == 0 || n > uint64(l.MmapBase) {
		return 0, false
	}
	m := merged(l.guarded())
	high := l.MmapBase
	// Walk the gaps from the top down; m is sorted and disjoint.
	for i := len(m) - 1; ; i-- {
		if i >= 0 && m[i].Start >= high {
			continue // entirely above the current gap
		}
		low := l.MinAddr
		if i >= 0 {
			low = max(low, m[i].End)
		}
		if high > low && uint64(high-low) >= n {
			if cand := Addr((uint64(high) - n) &^ (align - 1)); cand >= low {
				return cand, true
			}
		}
		if i < 0 || m[i].Start <= l.MinAddr {
			return 0, false
		}
		high = m[i].Start
	}
}

// merged returns rs sorted by Start with overlapping and touching ranges
// joined and empty ones dropped.
func merged(rs []Range) []Range {
	out := make([]Range, 0, len(rs))
	for _, r := range rs {
		if r.End > r.Start {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, Range.Compare)
	j := 0
	for i := 1; i < len(out); i++ {
		if out[i].Start <= out[j].End {
			out[j].End = max(out[j].End, out[i].End)
			continue
		}
		j++
		out[j] = out[i]
	}
	if len(out) > 0 {
		out = out[:j+1]
	}
	return out
}

// Place returns where a new mapping of n bytes without a hint goes: in the
// legacy layout BottomUp from MmapBase; else TopDown, or, when nothing fits
// below MmapBase, the lowest free address
// from LegacyBase up to TaskSize (arch_get_unmapped_area_topdown falls
// back to arch_get_unmapped_area: "a failed mmap() very likely causes
// application failure").
func (l *Layout) Place(n, align uint64) (Addr, bool) {
	if l.Legacy {
		return l.BottomUp(n, align, l.MmapBase, l.TaskSize)
	}
	if a, ok := l.TopDown(n, align); ok {
		return a, true
	}
	if l.LegacyBase == 0 {
		return 0, false
	}
	return l.BottomUp(n, align, l.LegacyBase, l.TaskSize)
}

// BottomUp returns the lowest address a >= low, aligned to align (a power
// of two, at least a page), such that [a, a+n) is free and ends at or
// below high (unmapped_area).
func (l *Layout) BottomUp(n, align uint64, low, high Addr) (Addr, bool) {
	if align < PageSize {
		align = PageSize
	}
	low = max(low, l.MinAddr)
	m := merged(l.guarded())
	cand := Addr((uint64(low) + align - 1) &^ (align - 1))
	for _, u := range m {
		if u.End <= cand {
			continue
		}
		if u.Start >= cand && uint64(u.Start-cand) >= n {
			break
		}
		cand = Addr((uint64(u.End) + align - 1) &^ (align - 1))
	}
	if cand < low || uint64(high) < uint64(cand) || uint64(high-cand) < n {
		return 0, false
	}
	return cand, true
}
