package kernelexec

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
)

// CompareOptions say what Compare allows to differ.
type CompareOptions struct {
	// AllowRandom allows the 16 AT_RANDOM bytes to differ.
	AllowRandom bool
	// AllowASLR compares addresses as object+offset (a file's lowest
	// mapping, [vdso], [stack], ...) instead of exactly, and skips what
	// randomisation moves within an object: the stack gap below the
	// strings (so rsp and the stack below the strings are compared by
	// content, not address), start_brk and the [heap] and [stack] extents.
	AllowASLR bool
	// IgnoreVDSO skips the [vvar], [vvar_vclock] and [vdso] mappings and
	// AT_SYSINFO_EHDR.
	IgnoreVDSO bool
	// Ignore lists field-name prefixes to skip ("status.SigQ", "fds",
	// "regs.orig_rax"); the names are those Compare reports.
	Ignore []string
}

// Diff is one difference between two snapshots.
type Diff struct {
	Field string
	A, B  string
}

func (d Diff) String() string { return fmt.Sprintf("%s: %s != %s", d.Field, d.A, d.B) }

type comparer struct {
	a, b *Snap
	o    CompareOptions
	out  []Diff
}

func (c *comparer) ignored(field string) bool {
	for _, p := range c.o.Ignore {
		if strings.HasPrefix(field, p) {
			return true
		}
	}
	return false
}

func (c *comparer) add(field, a, b string) {
	if a != b && !c.ignored(field) {
		c.out = append(c.out, Diff{field, a, b})
	}
}

// addr compares two addresses, symbolically under AllowASLR.
func (c *comparer) addr(field string, a, b uint64) {
	if c.o.AllowASLR {
		c.add(field, c.a.Symbolize(a), c.b.Symbolize(b))
		return
	}
	c.add(field, hex(a), hex(b))
}

func hex(v uint64) string { return fmt.Sprintf("%#x", v) }

// Compare lists the differences between two snapshots, field by field, in
// a stable order. Field names: regs.NAME, fpregs.NAME, rseq, personality,
// maps, auxv[i], auxv.len, stat.NAME, comm, cmdline, environ, status.KEY,
// limits, exe, cwd, fds, stack.NAME.
func Compare(a, b *Snap, o CompareOptions) []Diff {
	c := &comparer{a: a, b: b, o: o}
	c.regs()
	c.fpregs()
	c.add("rseq", fmt.Sprintf("%+v%s", a.Rseq, a.RseqErr), fmt.Sprintf("%+v%s", b.Rseq, b.RseqErr))
	c.add("personality", hex(uint64(a.Personality)), hex(uint64(b.Personality)))
	c.maps()
	c.auxv("auxv", a.Auxv, b.Auxv)
	sa, sb := a.Stat.fields(), b.Stat.fields()
	for i := range sa {
		f := "stat." + sa[i].name
		switch {
		case sa[i].name == "start_brk" && o.AllowASLR:
		case sa[i].name == "start_stack" && o.AllowASLR:
			// The gap below the strings moves it within [stack].
			c.add(f, fmt.Sprint(sa[i].v%16), fmt.Sprint(sb[i].v%16))
		default:
			c.addr(f, sa[i].v, sb[i].v)
		}
	}
	c.add("stat.comm", a.Stat.Comm, b.Stat.Comm)
	c.add("comm", a.Comm, b.Comm)
	c.add("cmdline", quote(a.Cmdline), quote(b.Cmdline))
	c.add("environ", quote(a.Environ), quote(b.Environ))
	keys := map[string]bool{}
	for k := range a.Status {
		keys[k] = true
	}
	for k := range b.Status {
		keys[k] = true
	}
	for _, k := range sortedKeys(keys) {
		c.add("status."+k, a.Status[k], b.Status[k])
	}
	c.add("limits", strings.Join(a.Limits, "\n"), strings.Join(b.Limits, "\n"))
	c.add("exe", a.Exe, b.Exe)
	c.add("cwd", a.Cwd, b.Cwd)
	c.add("fds", fmt.Sprint(a.Fds), fmt.Sprint(b.Fds))
	c.stack()
	return c.out
}

func quote(b []byte) string { return fmt.Sprintf("%q", b) }

func sortedKeys(m map[string]bool) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func (c *comparer) regs() {
	ra, rb := c.a.Regs.fields(), c.b.Regs.fields()
	for i := range ra {
		f := "regs." + ra[i].name
		switch ra[i].name {
		case "rip":
			c.addr(f, ra[i].v, rb[i].v)
		case "rsp":
			if c.o.AllowASLR {
				c.add(f+"%16", fmt.Sprint(ra[i].v%16), fmt.Sprint(rb[i].v%16))
			} else {
				c.add(f, hex(ra[i].v), hex(rb[i].v))
			}
		default:
			c.add(f, hex(ra[i].v), hex(rb[i].v))
		}
	}
}

func (c *comparer) fpregs() {
	fa, fb := &c.a.FPRegs, &c.b.FPRegs
	c.add("fpregs.cwd", hex(uint64(fa.Cwd)), hex(uint64(fb.Cwd)))
	c.add("fpregs.swd", hex(uint64(fa.Swd)), hex(uint64(fb.Swd)))
	c.add("fpregs.ftw", hex(uint64(fa.Ftw)), hex(uint64(fb.Ftw)))
	c.add("fpregs.fop", hex(uint64(fa.Fop)), hex(uint64(fb.Fop)))
	c.add("fpregs.rip", hex(fa.Rip), hex(fb.Rip))
	c.add("fpregs.rdp", hex(fa.Rdp), hex(fb.Rdp))
	c.add("fpregs.mxcsr", hex(uint64(fa.Mxcsr)), hex(uint64(fb.Mxcsr)))
	c.add("fpregs.mxcsr_mask", hex(uint64(fa.MxcrMask)), hex(uint64(fb.MxcrMask)))
	c.add("fpregs.st", fmt.Sprintf("%x", fa.St), fmt.Sprintf("%x", fb.St))
	c.add("fpregs.xmm", fmt.Sprintf("%x", fa.Xmm), fmt.Sprintf("%x", fb.Xmm))
}

func isVDSO(path string) bool {
	return path == "[vdso]" || path == "[vvar]" || path == "[vvar_vclock]"
}

// mapKey is how a mapping is compared.
func (c *comparer) mapKey(s *Snap, m Mapping) string {
	if !c.o.AllowASLR {
		return m.String()
	}
	size := hex(m.End - m.Start)
	if m.Path == "[stack]" || m.Path == "[heap]" {
		size = "*"
	}
	return fmt.Sprintf("%s size %s %s %08x %s %d %s", s.Symbolize(m.Start), size, m.Perms, m.Offset, m.Dev, m.Inode, m.Path)
}

// maps compares the two mapping lists as sets of lines and reports the
// lines only one side has.
func (c *comparer) maps() {
	keys := func(s *Snap) []string {
		var ks []string
		for _, m := range s.Maps {
			if c.o.IgnoreVDSO && isVDSO(m.Path) {
				continue
			}
			ks = append(ks, c.mapKey(s, m))
		}
		return ks
	}
	ka, kb := keys(c.a), keys(c.b)
	inB := map[string]int{}
	for _, k := range kb {
		inB[k]++
	}
	inA := map[string]int{}
	for _, k := range ka {
		inA[k]++
	}
	for _, k := range ka {
		if inB[k] == 0 {
			c.add("maps", k, "(absent)")
		} else {
			inB[k]--
		}
	}
	for _, k := range kb {
		if inA[k] == 0 {
			c.add("maps", "(absent)", k)
		} else {
			inA[k]--
		}
	}
}

func (c *comparer) auxv(field string, a, b []Aux) {
	c.add(field+".len", fmt.Sprint(len(a)), fmt.Sprint(len(b)))
	for i := 0; i < len(a) && i < len(b); i++ {
		f := fmt.Sprintf("%s[%d]", field, i)
		if a[i].Type != b[i].Type {
			c.add(f, a[i].String(), b[i].String())
			continue
		}
		f += " " + AuxName(a[i].Type)
		t := a[i].Type
		switch {
		case t == AT_SYSINFO_EHDR && c.o.IgnoreVDSO:
		case (t == AT_RANDOM || t == AT_PLATFORM) && c.o.AllowASLR:
			// Below the random gap: only "on the stack" is comparable.
			c.add(f, regionOf(c.a, a[i].Val), regionOf(c.b, b[i].Val))
		case auxIsAddr(t):
			c.addr(f, a[i].Val, b[i].Val)
		default:
			c.add(f, hex(a[i].Val), hex(b[i].Val))
		}
	}
}

func regionOf(s *Snap, addr uint64) string {
	if m, ok := s.Mapping(addr); ok {
		return m.Path
	}
	return "(unmapped)"
}

func (c *comparer) stack() {
	da, errA := c.a.DecodeStack()
	db, errB := c.b.DecodeStack()
	if errA != nil || errB != nil {
		c.add("stack.decode", fmt.Sprint(errA), fmt.Sprint(errB))
		return
	}
	c.add("stack.argc", fmt.Sprint(da.Argc), fmt.Sprint(db.Argc))
	c.add("stack.argv", fmt.Sprintf("%q", da.ArgvStr), fmt.Sprintf("%q", db.ArgvStr))
	c.add("stack.envp", fmt.Sprintf("%q", da.EnvpStr), fmt.Sprintf("%q", db.EnvpStr))
	c.add("stack.execfn", da.ExecFn, db.ExecFn)
	c.add("stack.platform", da.Platform, db.Platform)
	if !c.o.AllowRandom {
		c.add("stack.random", fmt.Sprintf("%x", da.Random), fmt.Sprintf("%x", db.Random))
	}
	// The aux vector on the stack must be the one /proc reports.
	c.add("stack.auxv_vs_proc(a)", fmt.Sprint(da.Auxv), fmt.Sprint(c.a.Auxv))
	c.add("stack.auxv_vs_proc(b)", fmt.Sprint(db.Auxv), fmt.Sprint(c.b.Auxv))
	c.add("stack.top", c.topName(c.a, da), c.topName(c.b, db))

	if c.o.AllowASLR {
		// The strings area, [arg_start, top), is the same bytes wherever it is.
		c.bytes("stack.strings", tail(c.a, c.a.Stat.ArgStart), tail(c.b, c.b.Stat.ArgStart), c.a.Stat.ArgStart, c.b.Stat.ArgStart)
		// The pointer block from rsp to the end of the aux vector, with
		// pointers into the stack expressed as offsets from their area.
		c.add("stack.vectors_len", fmt.Sprint(da.AuxvAddr-c.a.StackAddr), fmt.Sprint(db.AuxvAddr-c.b.StackAddr))
		return
	}
	ba, bb := c.a.Stack, c.b.Stack
	if c.o.AllowRandom {
		ba, bb = maskRandom(c.a, da), maskRandom(c.b, db)
	}
	c.add("stack.addr", hex(c.a.StackAddr), hex(c.b.StackAddr))
	c.bytes("stack.bytes", ba, bb, c.a.StackAddr, c.b.StackAddr)
}

func (c *comparer) topName(s *Snap, d *StackInfo) string {
	if c.o.AllowASLR {
		return regionOf(s, d.Top-1) + " end"
	}
	return hex(d.Top)
}

func tail(s *Snap, from uint64) []byte {
	if from < s.StackAddr || from-s.StackAddr > uint64(len(s.Stack)) {
		return nil
	}
	return s.Stack[from-s.StackAddr:]
}

func maskRandom(s *Snap, d *StackInfo) []byte {
	b := bytes.Clone(s.Stack)
	if d.RandomAddr >= s.StackAddr && d.RandomAddr-s.StackAddr+16 <= uint64(len(b)) {
		clear(b[d.RandomAddr-s.StackAddr:][:16])
	}
	return b
}

// bytes reports the first difference and the number of differing bytes.
func (c *comparer) bytes(field string, a, b []byte, addrA, addrB uint64) {
	if len(a) != len(b) {
		c.add(field+".len", fmt.Sprint(len(a)), fmt.Sprint(len(b)))
	}
	n, first := 0, -1
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			if first < 0 {
				first = i
			}
			n++
		}
	}
	if first >= 0 {
		end := min(first+16, len(a), len(b))
		c.add(fmt.Sprintf("%s (%d bytes differ, first at offset %#x)", field, n, first),
			fmt.Sprintf("%#x: %x", addrA+uint64(first), a[first:end]),
			fmt.Sprintf("%#x: %x", addrB+uint64(first), b[first:end]))
	}
}

// Symbolize names an address by the object holding it: "PATH+0xOFF" with
// the offset from the lowest mapping of that file (anonymous mappings
// right after a file's, such as its bss, count as the file's),
// "[stack]-0xOFF" from the end of the stack, "[vdso]+0xOFF" and so on for
// the other named mappings; "0xADDR" when no object holds it. Ends of
// objects (end_code, end_data) belong to the object they end.
func (s *Snap) Symbolize(addr uint64) string {
	type obj struct {
		name       string
		start, end uint64
	}
	var objs []obj
	for _, m := range s.Maps {
		name := m.Path
		if name == "" && len(objs) > 0 && objs[len(objs)-1].end == m.Start && !strings.HasPrefix(objs[len(objs)-1].name, "[") {
			objs[len(objs)-1].end = m.End
			continue
		}
		if name == "" {
			name = "[anon]"
		}
		found := false
		for i := range objs {
			if objs[i].name == name && name != "[anon]" {
				objs[i].end = max(objs[i].end, m.End)
				found = true
				break
			}
		}
		if !found {
			objs = append(objs, obj{name, m.Start, m.End})
		}
	}
	for _, o := range objs {
		if addr >= o.start && addr <= o.end {
			if o.name == "[stack]" {
				return fmt.Sprintf("[stack]-%#x", o.end-addr)
			}
			return fmt.Sprintf("%s+%#x", o.name, addr-o.start)
		}
	}
	return hex(addr)
}
