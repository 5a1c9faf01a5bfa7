package vm

import "sort"

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
	TaskSize Addr    // highest user address + 1
	StackTop Addr    // initial stack top (mm->start_stack rounds below it)
	MmapBase Addr    // top-down allocations end at or below this
	MinAddr  Addr    // mmap_min_addr
	Used     []Range // ranges already taken, kept sorted by Start
}

// Take records r as used.
func (l *Layout) Take(r Range) {
	l.Used = append(l.Used, r)
	sort.Slice(l.Used, func(i, j int) bool { return l.Used[i].Start < l.Used[j].Start })
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
// at least a page), such that [a, a+n) is free and ends at or below
// MmapBase: what Linux's unmapped_area_topdown returns for a new mapping of n
// bytes without a hint. ok is false when nothing fits.
func (l *Layout) TopDown(n, align uint64) (a Addr, ok bool) {
	if align < PageSize {
		align = PageSize
	}
	if n == 0 || n > uint64(l.MmapBase) {
		return 0, false
	}
	high := l.MmapBase
	// Walk the gaps from the top down. Used is sorted by Start.
	for i := len(l.Used); i >= 0; i-- {
		low := l.MinAddr
		if i > 0 {
			low = l.Used[i-1].End
		}
		top := high
		if i < len(l.Used) && l.Used[i].Start < top {
			top = l.Used[i].Start
		}
		if top >= low && uint64(top-low) >= n {
			cand := Addr((uint64(top) - n) &^ (align - 1))
			if cand >= low {
				return cand, true
			}
		}
		if i > 0 && l.Used[i-1].Start < high {
			high = l.Used[i-1].Start
		}
	}
	return 0, false
}
