package vm

import "testing"

func TestTopDown(t *testing.T) {
	const base = Addr(0x7ffff7fff000)
	for _, tc := range []struct {
		name  string
		used  []Range
		min   Addr
		n     uint64
		align uint64
		want  Addr
		ok    bool
	}{
		{name: "empty", n: 0x2000, want: base - 0x2000, ok: true},
		{name: "below a range at the base", used: []Range{{base - 0x1000, base}}, n: 0x1000, want: base - 0x2000, ok: true},
		{name: "range above the base ignored", used: []Range{{base + 0x1000, base + 0x5000}}, n: 0x1000, want: base - 0x1000, ok: true},
		{name: "straddling the base", used: []Range{{base - 0x3000, base + 0x1000}}, n: 0x1000, want: base - 0x4000, ok: true},
		{name: "gap too small", used: []Range{{base - 0x1000, base}, {base - 0x3000, base - 0x2000}}, n: 0x2000, want: base - 0x5000, ok: true},
		{name: "gap exact", used: []Range{{base - 0x1000, base}, {base - 0x4000, base - 0x3000}}, n: 0x2000, want: base - 0x3000, ok: true},
		{name: "overlapping used ranges", used: []Range{{base - 0x10000, base - 0x1000}, {base - 0x8000, base - 0x7000}}, n: 0x2000, want: base - 0x12000, ok: true},
		{name: "nested range does not open a gap", used: []Range{{0x10000, base}, {0x20000, 0x30000}}, n: 0x1000, min: 0x10000, ok: false},
		{name: "alignment", n: 0x1000, align: 0x200000, want: (base - 0x1000) &^ 0x1fffff, ok: true},
		{name: "min addr", used: []Range{{0x12000, base}}, min: 0x10000, n: 0x2000, want: 0x10000, ok: true},
		{name: "min addr too high", used: []Range{{0x12000, base}}, min: 0x10000, n: 0x3000, ok: false},
		{name: "range below min addr", used: []Range{{0, 0x11000}, {0x13000, base}}, min: 0x10000, n: 0x2000, want: 0x11000, ok: true},
		{name: "too big", n: uint64(base) + 0x1000, ok: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &Layout{TaskSize: TaskSize64, MmapBase: base, MinAddr: tc.min}
			for _, r := range tc.used {
				l.Take(r)
			}
			got, ok := l.TopDown(tc.n, tc.align)
			if ok != tc.ok || (ok && got != tc.want) {
				t.Errorf("TopDown(%#x) = %v, %v; want %v, %v", tc.n, got, ok, tc.want, tc.ok)
			}
			if ok && !l.Free(Range{got, got + Addr(tc.n)}) {
				t.Errorf("TopDown returned a range that is not Free")
			}
		})
	}
}

// Place falls back to the lowest free range from LegacyBase when nothing
// fits below MmapBase, as arch_get_unmapped_area_topdown does.
func TestPlaceBottomUp(t *testing.T) {
	l := &Layout{TaskSize: 0x100000, MmapBase: 0x80000, MinAddr: 0x1000, LegacyBase: 0x40000,
		Used: []Range{{Start: 0x1000, End: 0x80000}, {Start: 0x90000, End: 0x91000}}}
	if a, ok := l.TopDown(0x2000, PageSize); ok {
		t.Fatalf("TopDown found %v in a full range", a)
	}
	a, ok := l.Place(0x2000, PageSize)
	if !ok || a != 0x80000 {
		t.Fatalf("Place = %v, %v; want 0x80000 (the first gap above LegacyBase)", a, ok)
	}
	a, ok = l.Place(0x20000, PageSize)
	if !ok || a != 0x91000 {
		t.Fatalf("Place of 0x20000 = %v, %v; want 0x91000", a, ok)
	}
	if _, ok := l.Place(0x80000, PageSize); ok {
		t.Fatal("Place of more than is free succeeded")
	}
}

// The legacy layout places bottom-up from MmapBase (LegacyBase), the
// lowest gap first, and never below it.
func TestPlaceLegacy(t *testing.T) {
	l := &Layout{TaskSize: 0x100000, MmapBase: 0x40000, LegacyBase: 0x40000, Legacy: true, MinAddr: 0x1000,
		Used: []Range{{Start: 0x40000, End: 0x42000}, {Start: 0x43000, End: 0x50000}}}
	for _, tc := range []struct {
		n    uint64
		want Addr
	}{{0x1000, 0x42000}, {0x2000, 0x50000}, {0xb0000, 0x50000}} {
		if a, ok := l.Place(tc.n, PageSize); !ok || a != tc.want {
			t.Errorf("Place(%#x) = %v, %v; want %v", tc.n, a, ok, tc.want)
		}
	}
	if a, ok := l.Place(0xb1000, PageSize); ok {
		t.Errorf("Place beyond the top = %v; the room below MmapBase does not count", a)
	}
}

// A placement without MAP_FIXED keeps stack_guard_gap below the stack
// (vm_start_gap), top-down and bottom-up, and a hint there is not taken;
// a fixed mapping (Free) may go up to the stack itself.
func TestStackGuardGap(t *testing.T) {
	stack := Range{Start: 0xfffdd000, End: 0xffffe000}
	l := &Layout{TaskSize: TaskSize32, MmapBase: 0xf7ffe000, MinAddr: 0x10000, LegacyBase: 0x55555000,
		Used: []Range{{Start: 0, End: 0xffed5000}}, Stack: stack}
	a, ok := l.Place(0x8000, PageSize)
	if !ok || a != 0xffed5000 {
		t.Fatalf("Place of 0x8000 = %v, %v; want 0xffed5000, 1 MiB below the stack", a, ok)
	}
	if a, ok := l.Place(0x9000, PageSize); ok {
		t.Fatalf("Place of 0x9000 = %v: inside the guard gap", a)
	}
	if !l.InStackGap(Range{Start: stack.Start - PageSize, End: stack.Start}) || l.InStackGap(Range{Start: 0xffed5000, End: 0xffedd000}) {
		t.Error("InStackGap is not [stack start - 1 MiB, stack end)")
	}
	if !l.Free(Range{Start: stack.Start - PageSize, End: stack.Start}) {
		t.Error("a fixed mapping just below the stack is not Free")
	}
	top := &Layout{TaskSize: 0x100000000, MmapBase: 0xfffdd000, MinAddr: 0x10000, Stack: stack}
	if a, ok := top.TopDown(0x1000, PageSize); !ok || a != stack.Start-StackGuardGap-PageSize {
		t.Errorf("TopDown just below the stack = %v, %v; want %#x", a, ok, uint64(stack.Start-StackGuardGap-PageSize))
	}
}
