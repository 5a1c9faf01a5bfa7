// Package sim is an in-memory address space: a vm.AddressSpace that records
// mappings instead of making them, so that plans can be applied and checked
// in tests without a process.
//
// A Space keeps mappings (VMAs) sorted and disjoint, with their protection
// and either a file (path, device, inode, offset) or anonymous memory, and
// splits them on page boundaries when part of one is unmapped, protected or
// mapped over, as Linux does. A mapping without a fixed address goes where
// Linux's mmap would put it: at the hint if that range is free, else the
// highest free range below the mmap base (unmapped_area_topdown).
//
// Bytes written with Write are kept sparsely per page and read back with
// Read, which falls back to the file's contents for file pages that were
// never written and to zeros for anonymous ones. Maps renders the space
// exactly as /proc/PID/maps does.
//
// Adjacent mappings are merged as the kernel's vma_merge does in the simple
// cases only: both anonymous without a label, or the same file at
// contiguous offsets, with equal protection. Labelled regions (AddRegion)
// never merge. The kernel refuses some merges this package performs
// (anonymous VMAs whose anon_vma differ once pages were touched).
package sim
