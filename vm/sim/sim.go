package sim

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/uexec/uexec/vm"
	"golang.org/x/sys/unix"
)

// Mapping is one VMA of a Space.
type Mapping struct {
	Start, End vm.Addr
	Prot       vm.Prot
	File       *vm.File // nil for anonymous memory
	Offset     uint64   // file offset of Start
	// Label names a special region as /proc/PID/maps does: "[heap]",
	// "[stack]", "[vvar]", "[vdso]". Empty for ordinary mappings.
	Label string
}

// Name is what /proc/PID/maps shows in the last column.
func (m Mapping) Name() string {
	if m.File != nil {
		return m.File.Name()
	}
	return m.Label
}

// String renders m as one /proc/PID/maps line without the newline
// (fs/proc/task_mmu.c show_map_vma): addresses and offset at least 8 hex
// digits, device major:minor at least 2, the inode in decimal, then, when
// there is a name, spaces up to column 73 and the name. A line without a
// name ends in a space, as the kernel's does.
func (m Mapping) String() string {
	var dev, ino, off uint64
	if m.File != nil {
		dev, ino, off = m.File.Dev, m.File.Ino, m.Offset
	}
	sh := 'p'
	s := fmt.Sprintf("%08x-%08x %s%c %08x %02x:%02x %d ",
		uint64(m.Start), uint64(m.End), m.Prot, sh, off, unix.Major(dev), unix.Minor(dev), ino)
	if name := m.Name(); name != "" {
		// seq_setwidth(m, 25 + sizeof(void *) * 6 - 1); seq_pad(m, ' ')
		const width = 25 + 8*6 - 1
		if len(s) < width {
			s += strings.Repeat(" ", width-len(s))
		}
		s += " " + name
	}
	return s
}

// Space is a simulated address space. The zero value is not usable: make
// one with New.
type Space struct {
	taskSize, mmapBase, minAddr vm.Addr
	legacyBase                  vm.Addr
	legacy                      bool // bottom-up placement (vm.Layout.Legacy)
	rawio                       bool // fixed mappings may start below minAddr

	maps  []Mapping          // sorted by Start, disjoint
	pages map[vm.Addr][]byte // written pages, by page address
	// kept are boundaries between two mappings that merge() leaves: the
	// top of a mapping MapBrk made below another one. An operation on
	// either side ends it.
	kept map[vm.Addr]bool
}

var _ vm.AddressSpace = (*Space)(nil)

// New returns an empty space with l's geometry: the user address limit
// (TaskSize), where placement starts (MmapBase, LegacyBase, Legacy) and the
// lowest mappable address (MinAddr). l.Used is not mapped: the space starts
// empty.
func New(l vm.Layout) *Space {
	return &Space{taskSize: l.TaskSize, mmapBase: l.MmapBase, minAddr: l.MinAddr, legacyBase: l.LegacyBase, legacy: l.Legacy,
		rawio: l.RawIO, pages: map[vm.Addr][]byte{}}
}

// Mappings returns a copy of the mappings in address order.
func (s *Space) Mappings() []Mapping { return append([]Mapping(nil), s.maps...) }

// Lookup returns the mapping holding addr.
func (s *Space) Lookup(addr vm.Addr) (Mapping, bool) {
	i := sort.Search(len(s.maps), func(i int) bool { return s.maps[i].End > addr })
	if i < len(s.maps) && s.maps[i].Start <= addr {
		return s.maps[i], true
	}
	return Mapping{}, false
}

// Maps renders the space as /proc/PID/maps does, one line per mapping.
func (s *Space) Maps() string {
	var b strings.Builder
	for _, m := range s.maps {
		b.WriteString(m.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// Layout returns the space's geometry with every mapping as a used range,
// for planners that place more mappings.
func (s *Space) Layout() vm.Layout {
	l := vm.Layout{TaskSize: s.taskSize, MmapBase: s.mmapBase, MinAddr: s.minAddr, LegacyBase: s.legacyBase, Legacy: s.legacy, RawIO: s.rawio}
	for _, m := range s.maps {
		l.Used = append(l.Used, vm.Range{Start: m.Start, End: m.End})
	}
	return l
}

// checkRange validates a page-aligned range [addr, addr+n) and returns its
// end (mmap's and munmap's EINVAL cases; ENOMEM beyond the task size).
func (s *Space) checkRange(addr vm.Addr, n uint64) (vm.Addr, error) {
	if n == 0 || addr.PageOffset() != 0 || n%vm.PageSize != 0 {
		return 0, fmt.Errorf("range %v+%#x not page aligned or empty: %w", addr, n, unix.EINVAL)
	}
	end, ok := addr.Add(n)
	if !ok || end > s.taskSize {
		return 0, fmt.Errorf("range %v+%#x beyond the task size %v: %w", addr, n, s.taskSize, unix.ENOMEM)
	}
	return end, nil
}

// place chooses where a new mapping of n bytes goes (Linux
// get_unmapped_area): exactly at addr when fixed; at the hint addr when
// that range is free; else top down below the mmap base.
func (s *Space) place(addr vm.Addr, n uint64, fixed bool) (vm.Addr, error) {
	if fixed {
		if _, err := s.checkRange(addr, n); err != nil {
			return 0, err
		}
		if addr < s.minAddr && !s.rawio {
			// security_mmap_addr: below mmap_min_addr.
			return 0, fmt.Errorf("fixed mapping at %v below mmap_min_addr %v: %w", addr, s.minAddr, unix.EPERM)
		}
		return addr, nil
	}
	if n == 0 || n%vm.PageSize != 0 {
		return 0, fmt.Errorf("length %#x: %w", n, unix.EINVAL)
	}
	if n > uint64(s.taskSize) {
		return 0, fmt.Errorf("length %#x beyond the task size: %w", n, unix.ENOMEM)
	}
	l := s.Layout()
	if addr != 0 {
		hint := addr.RoundDown()
		if end, ok := hint.Add(n); ok && end <= s.taskSize && hint >= s.minAddr && l.Free(vm.Range{Start: hint, End: end}) {
			return hint, nil
		}
	}
	a, ok := l.Place(n, vm.PageSize)
	if !ok {
		return 0, fmt.Errorf("no room for %#x bytes (mmap base %v): %w", n, s.mmapBase, unix.ENOMEM)
	}
	return a, nil
}

// MapFile maps n bytes of f from off privately (vm.AddressSpace).
func (s *Space) MapFile(addr vm.Addr, n uint64, prot vm.Prot, f *vm.File, off uint64, fixed bool) (vm.Addr, error) {
	if f == nil {
		return 0, unix.EBADF
	}
	if off%vm.PageSize != 0 {
		return 0, fmt.Errorf("file offset %#x not page aligned: %w", off, unix.EINVAL)
	}
	if off+n < off {
		return 0, fmt.Errorf("file offset %#x + %#x overflows: %w", off, n, unix.EOVERFLOW)
	}
	at, err := s.place(addr, n, fixed)
	if err != nil {
		return 0, err
	}
	s.insert(Mapping{Start: at, End: at + vm.Addr(n), Prot: prot, File: f, Offset: off})
	return at, nil
}

// MapAnon maps anonymous zero-filled memory (vm.AddressSpace).
func (s *Space) MapAnon(addr vm.Addr, n uint64, prot vm.Prot, fixed bool) (vm.Addr, error) {
	at, err := s.place(addr, n, fixed)
	if err != nil {
		return 0, err
	}
	s.insert(Mapping{Start: at, End: at + vm.Addr(n), Prot: prot})
	return at, nil
}

var _ vm.BrkMapper = (*Space)(nil)

// MapBrk maps anonymous memory at exactly [addr, addr+n) as vm_brk_flags
// does (vm.BrkMapper): it joins the mapping below it, never the one above.
func (s *Space) MapBrk(addr vm.Addr, n uint64, prot vm.Prot) (vm.Addr, error) {
	at, err := s.MapAnon(addr, n, prot, true)
	if err != nil {
		return 0, err
	}
	// Undo the merge with what is above, if any, and keep it undone.
	end := at + vm.Addr(n)
	if s.kept == nil {
		s.kept = map[vm.Addr]bool{}
	}
	s.kept[end] = true
	s.split(end)
	return at, nil
}

// AddRegion maps anonymous memory [start, end) with a label, replacing what
// is there: the regions the kernel sets up itself ("[stack]", "[heap]",
// "[vvar]", "[vdso]").
func (s *Space) AddRegion(start, end vm.Addr, prot vm.Prot, label string) error {
	if end <= start {
		return fmt.Errorf("region %v-%v: %w", start, end, unix.EINVAL)
	}
	if _, err := s.checkRange(start, uint64(end-start)); err != nil {
		return err
	}
	s.insert(Mapping{Start: start, End: end, Prot: prot, Label: label})
	return nil
}

// LabelHeap names "[heap]" every anonymous mapping without a label that
// lies across the program break, as /proc/PID/maps does
// (vma_is_initial_heap: vm_start < brk && vm_end > start_brk). Call it
// last: it changes names only.
func (s *Space) LabelHeap(startBrk, brk vm.Addr) {
	for i := range s.maps {
		// vma_is_initial_heap is asked before vma_is_initial_stack.
		if m := &s.maps[i]; m.File == nil && (m.Label == "" || m.Label == "[stack]") && m.Start < brk && m.End > startBrk {
			m.Label = "[heap]"
		}
	}
}

// LabelStack names "[stack]" what /proc/PID/maps names so: the anonymous
// mappings that hold mm->start_stack, ends included (vma_is_initial_stack),
// whichever command made them (a segment's bss over the stack's pages is
// one). The pieces of the [stack] region that a mapping split off and that
// do not hold it are ordinary anonymous mappings.
func (s *Space) LabelStack(startStack vm.Addr) {
	for i := range s.maps {
		m := &s.maps[i]
		holds := m.Start <= startStack && startStack <= m.End
		switch {
		case m.Label == "[stack]" && !holds:
			m.Label = ""
		case m.Label == "" && m.File == nil && holds:
			m.Label = "[stack]"
		}
	}
	s.merge()
}

// Unmap removes the pages of [addr, addr+n) (vm.AddressSpace). Unmapping
// pages that are not mapped is not an error, as with munmap.
func (s *Space) Unmap(addr vm.Addr, n uint64) error {
	end, err := s.checkRange(addr, n)
	if err != nil {
		return err
	}
	s.cut(addr, end)
	return nil
}

// Protect changes the protection of [addr, addr+n) (vm.AddressSpace). As
// with mprotect, every page must be mapped (else ENOMEM and nothing
// changes).
func (s *Space) Protect(addr vm.Addr, n uint64, prot vm.Prot) error {
	end, err := s.checkRange(addr, n)
	if err != nil {
		return err
	}
	if !s.covered(addr, end) {
		return fmt.Errorf("mprotect %v-%v: not all mapped: %w", addr, end, unix.ENOMEM)
	}
	s.unkeep(addr, end)
	s.split(addr)
	s.split(end)
	for i := range s.maps {
		if s.maps[i].Start >= addr && s.maps[i].End <= end {
			s.maps[i].Prot = prot
		}
	}
	s.merge()
	return nil
}

// Write stores b at addr whatever the protection (vm.AddressSpace); every
// byte must be mapped (else EFAULT and nothing is written).
func (s *Space) Write(addr vm.Addr, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	end, ok := addr.Add(uint64(len(b)))
	if !ok || !s.covered(addr, end) {
		return fmt.Errorf("write %v+%#x: not all mapped: %w", addr, len(b), unix.EFAULT)
	}
	for len(b) > 0 {
		pg := addr.RoundDown()
		p, ok := s.pages[pg]
		if !ok {
			p = make([]byte, vm.PageSize)
			s.fill(pg, p)
			s.pages[pg] = p
		}
		n := copy(p[addr.PageOffset():], b)
		b = b[n:]
		addr += vm.Addr(n)
	}
	return nil
}

// Read returns n bytes at addr: what was written, else the file's bytes for
// a file mapping (zeros beyond the end of the file), else zeros. Every byte
// must be mapped (else EFAULT). Protection is ignored.
func (s *Space) Read(addr vm.Addr, n int) ([]byte, error) {
	end, ok := addr.Add(uint64(n))
	if n < 0 || !ok || (n > 0 && !s.covered(addr, end)) {
		return nil, fmt.Errorf("read %v+%#x: not all mapped: %w", addr, n, unix.EFAULT)
	}
	out := make([]byte, 0, n)
	page := make([]byte, vm.PageSize)
	for len(out) < n {
		pg := addr.RoundDown()
		p, ok := s.pages[pg]
		if !ok {
			clear(page)
			s.fill(pg, page)
			p = page
		}
		k := min(n-len(out), int(vm.PageSize-addr.PageOffset()))
		out = append(out, p[addr.PageOffset():][:k]...)
		addr += vm.Addr(k)
	}
	return out, nil
}

// fill puts the original contents of page pg into p: file bytes or zeros.
func (s *Space) fill(pg vm.Addr, p []byte) {
	m, ok := s.Lookup(pg)
	if !ok || m.File == nil || m.File.R == nil {
		return
	}
	off := m.Offset + uint64(pg-m.Start)
	n, err := m.File.R.ReadAt(p, int64(off))
	if err != nil && err != io.EOF {
		// A short read leaves zeros: pages past the end of the file
		// read as zeros here (the kernel would raise SIGBUS).
		clear(p[n:])
	}
}

// covered reports whether every page of [start, end) is mapped.
func (s *Space) covered(start, end vm.Addr) bool {
	at := start
	for _, m := range s.maps {
		if m.End <= at {
			continue
		}
		if m.Start > at {
			return false
		}
		at = m.End
		if at >= end {
			return true
		}
	}
	return at >= end
}

// insert maps m over whatever is in its range (MAP_FIXED semantics).
func (s *Space) insert(m Mapping) {
	s.cut(m.Start, m.End)
	i := sort.Search(len(s.maps), func(i int) bool { return s.maps[i].Start >= m.Start })
	s.maps = append(s.maps, Mapping{})
	copy(s.maps[i+1:], s.maps[i:])
	s.maps[i] = m
	s.merge()
}

// cut removes [start, end) from the mappings and forgets written pages
// there.
func (s *Space) cut(start, end vm.Addr) {
	s.unkeep(start, end)
	s.split(start)
	s.split(end)
	out := s.maps[:0]
	for _, m := range s.maps {
		if m.Start >= start && m.End <= end {
			continue
		}
		out = append(out, m)
	}
	s.maps = out
	for pg := range s.pages {
		if pg >= start && pg < end {
			delete(s.pages, pg)
		}
	}
}

// unkeep ends the kept boundaries an operation on [start, end) touches:
// the kernel tries to merge what it maps or changes with both neighbours.
func (s *Space) unkeep(start, end vm.Addr) {
	for b := range s.kept {
		if b >= start && b <= end {
			delete(s.kept, b)
		}
	}
}

// split makes addr a mapping boundary if a mapping spans it (split_vma).
func (s *Space) split(addr vm.Addr) {
	i := sort.Search(len(s.maps), func(i int) bool { return s.maps[i].End > addr })
	if i == len(s.maps) || s.maps[i].Start >= addr {
		return
	}
	lo, hi := s.maps[i], s.maps[i]
	lo.End = addr
	hi.Start = addr
	if hi.File != nil {
		hi.Offset += uint64(addr - lo.Start)
	}
	s.maps = append(s.maps, Mapping{})
	copy(s.maps[i+2:], s.maps[i+1:])
	s.maps[i], s.maps[i+1] = lo, hi
}

// merge joins adjacent mappings that the kernel would merge in the simple
// cases (see the package doc).
func (s *Space) merge() {
	if len(s.maps) < 2 {
		return
	}
	out := s.maps[:1]
	for _, m := range s.maps[1:] {
		p := &out[len(out)-1]
		if canMerge(*p, m) && !s.kept[p.End] {
			p.End = m.End
			continue
		}
		out = append(out, m)
	}
	s.maps = out
}

func canMerge(a, b Mapping) bool {
	if a.End != b.Start || a.Prot != b.Prot || a.Label != "" || b.Label != "" {
		return false
	}
	if a.File == nil && b.File == nil {
		return true
	}
	if a.File == nil || b.File == nil {
		return false
	}
	same := a.File == b.File ||
		(a.File.Dev == b.File.Dev && a.File.Ino == b.File.Ino && a.File.Ino != 0 && a.File.Name() == b.File.Name())
	return same && a.Offset+uint64(a.End-a.Start) == b.Offset
}
