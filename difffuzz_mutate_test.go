package uexec_test

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/uexec/uexec/internal/testelf"
)

// The mutator of TestDiffFuzz: deterministic from (seed, index), it takes
// one of the seed files and changes a few fields, knowing where the ELF
// header, the program headers, PT_INTERP and the #! line are.

// diffEnv is what seeds may point at: fixtures written once per run.
type diffEnv struct {
	dir       string // 0755, searchable by uid 65534
	static    string // a static ET_EXEC that pauses
	staticPIE string // an ET_DYN without PT_INTERP (a loader)
	script    string // #!/bin/sh
	elf32     string // an ELF32 static program
	empty     string // an empty file, mode 0755
	noExec    string // a static program, mode 0644
}

// diffSeed is a file to mutate. Build returns the main file, and, for a
// seed whose interpreter is mutated, the interpreter (the main file then
// names interp, where the interpreter is written).
type diffSeed struct {
	name   string
	script bool // the main file is a #! script
	build  func(env *diffEnv, interp string) (main, ld []byte)
}

// systemLD is the dynamic loader of the machine.
const systemLD = "/lib64/ld-linux-x86-64.so.2"

// static32 is an ELF32 static program.
func static32() *testelf.File {
	return &testelf.File{
		Class: elf.ELFCLASS32, Type: elf.ET_EXEC, Entry: 0x8048100,
		Progs: []testelf.Prog{
			{Type: elf.PT_LOAD, Flags: elf.PF_R | elf.PF_X, Off: 0, Vaddr: 0x8048000, Filesz: 0x200, Memsz: 0x200, Align: 0x1000},
			{Type: elf.PT_LOAD, Flags: elf.PF_R | elf.PF_W, Off: 0x1000, Vaddr: 0x8049000, Filesz: 0x10, Memsz: 0x2000, Align: 0x1000, Data: make([]byte, 0x10)},
			{Type: elf.PT_GNU_STACK, Flags: elf.PF_R | elf.PF_W},
		},
		Blobs: []testelf.Blob{{Off: 0x100, Data: testelf.PauseCode}},
	}
}

// pie32 is an ELF32 static-pie program.
func pie32() *testelf.File {
	f := static32()
	f.Type, f.Entry = elf.ET_DYN, 0x100
	f.Progs[0].Vaddr, f.Progs[1].Vaddr = 0, 0x1000
	return f
}

func diffSeeds() []diffSeed {
	elfSeed := func(name string, f func(env *diffEnv) *testelf.File) diffSeed {
		return diffSeed{name: name, build: func(env *diffEnv, _ string) ([]byte, []byte) { return f(env).Bytes(), nil }}
	}
	withInterp := func(f *testelf.File, interp string) *testelf.File { f.Interp = interp; return f }
	script := func(name, line string) diffSeed {
		return diffSeed{name: name, script: true, build: func(env *diffEnv, _ string) ([]byte, []byte) {
			l := strings.NewReplacer("$STATIC", env.static, "$SCRIPT", env.script, "$DIR", env.dir).Replace(line)
			return []byte(l + "echo x\n"), nil
		}}
	}
	return []diffSeed{
		elfSeed("static ET_EXEC", func(*diffEnv) *testelf.File { return testelf.Static64() }),
		elfSeed("static ET_EXEC, garbage sections", func(*diffEnv) *testelf.File {
			f := testelf.Static64()
			f.GarbageSections = true
			return f
		}),
		elfSeed("static-pie", func(*diffEnv) *testelf.File { return testelf.PIE64("") }),
		elfSeed("PIE, system ld.so", func(*diffEnv) *testelf.File { return testelf.PIE64(systemLD) }),
		elfSeed("ET_EXEC, system ld.so", func(*diffEnv) *testelf.File { return withInterp(testelf.Static64(), systemLD) }),
		elfSeed("PIE, fixture loader", func(env *diffEnv) *testelf.File { return testelf.PIE64(env.staticPIE) }),
		elfSeed("ELF32 static", func(*diffEnv) *testelf.File { return static32() }),
		elfSeed("ELF32 PIE", func(*diffEnv) *testelf.File { return pie32() }),
		{name: "PIE, mutated loader", build: func(env *diffEnv, interp string) ([]byte, []byte) {
			return testelf.PIE64(interp).Bytes(), testelf.PIE64("").Bytes()
		}},
		{name: "PIE, mutated ET_EXEC loader", build: func(env *diffEnv, interp string) ([]byte, []byte) {
			return testelf.PIE64(interp).Bytes(), testelf.Static64().Bytes()
		}},
		script("#!/bin/sh", "#!/bin/sh\n"),
		script("#! /bin/sh -e", "#! /bin/sh -e\n"),
		script("#!/usr/bin/env with args", "#!/usr/bin/env -S sh -e\n"),
		script("#! static fixture", "#!$STATIC arg\n"),
		script("#! nested script", "#!$SCRIPT\n"),
	}
}

// mutant is one generated case.
type mutant struct {
	seed  *diffSeed
	index int
	ops   []string
	main  []byte
	ld    []byte // the interpreter, for a seed that mutates it
}

func (m *mutant) String() string {
	return fmt.Sprintf("mutant %d of %q: %s", m.index, m.seed.name, strings.Join(m.ops, "; "))
}

// interesting returns a value for a field of width bytes that was orig:
// boundaries of pages, of the address space and of the field's type,
// small moves and random values.
func interesting(r *rand.Rand, orig uint64, width int) uint64 {
	mask := ^uint64(0)
	if width < 8 {
		mask = 1<<(8*width) - 1
	}
	var v uint64
	switch r.IntN(24) {
	case 0:
		v = 0
	case 1:
		v = 1
	case 2:
		v = mask
	case 3:
		v = mask - uint64(r.IntN(0x2000))
	case 4:
		v = orig + uint64(r.IntN(16)) - 8
	case 5:
		v = orig + 0x1000*(uint64(r.IntN(8))+1)
	case 6:
		v = orig - 0x1000*(uint64(r.IntN(8))+1)
	case 7:
		v = orig + uint64(r.IntN(0x1000))
	case 8:
		v = 1 << r.IntN(8*width)
	case 9:
		v = 1<<r.IntN(8*width) - 1
	case 10:
		v = 1<<47 - 0x1000*uint64(r.IntN(0x1000))
	case 11:
		v = 1 << 63
	case 12:
		v = 1<<63 - 0x1000*uint64(r.IntN(0x1000))
	case 13:
		v = uint64(r.IntN(0x20000))
	case 14:
		v = uint64(r.IntN(0x10)) * 0x1000
	case 15:
		v = 0xffffe000 - 0x1000*uint64(r.IntN(16))
	case 16:
		v = orig << 1
	case 17:
		v = orig >> 1
	case 18:
		v = r.Uint64()
	case 19:
		v = 0x10000 - 0x1000*uint64(r.IntN(2))
	case 20:
		v = 0x200000 * uint64(r.IntN(8))
	case 21:
		v = 1<<46 + 0x1000*uint64(r.IntN(16))
	case 22:
		v = 0x555555554000 + 0x1000*uint64(r.IntN(16))
	default:
		v = orig ^ 1<<r.IntN(8*width)
	}
	return v & mask
}

// field is a little-endian integer in a file.
type field struct {
	name  string
	off   int
	width int
}

func (f field) get(b []byte) uint64 {
	if f.off+f.width > len(b) {
		return 0
	}
	var w [8]byte
	copy(w[:], b[f.off:f.off+f.width])
	return binary.LittleEndian.Uint64(w[:])
}

func (f field) set(b []byte, v uint64) {
	if f.off+f.width > len(b) {
		return
	}
	var w [8]byte
	binary.LittleEndian.PutUint64(w[:], v)
	copy(b[f.off:f.off+f.width], w[:f.width])
}

// elfFields lists the header fields and, for each program header of the
// unmutated table, its fields.
func elfFields(b []byte) (hdr []field, phdrs [][]field) {
	is32 := len(b) > 4 && b[4] == byte(elf.ELFCLASS32)
	hdr = []field{{"e_type", 16, 2}, {"e_machine", 18, 2}, {"e_version", 20, 4}}
	for i := 4; i < 16; i++ {
		hdr = append(hdr, field{fmt.Sprintf("e_ident[%d]", i), i, 1})
	}
	var phoff, phnum uint64
	if is32 {
		hdr = append(hdr, field{"e_entry", 24, 4}, field{"e_phoff", 28, 4}, field{"e_phentsize", 42, 2}, field{"e_phnum", 44, 2})
		phoff, phnum = field{"", 28, 4}.get(b), field{"", 44, 2}.get(b)
		for i := range int(phnum) {
			o := int(phoff) + i*testelf.Phdr32Size
			phdrs = append(phdrs, []field{{"p_type", o, 4}, {"p_offset", o + 4, 4}, {"p_vaddr", o + 8, 4}, {"p_filesz", o + 16, 4},
				{"p_memsz", o + 20, 4}, {"p_flags", o + 24, 4}, {"p_align", o + 28, 4}})
		}
		return hdr, phdrs
	}
	hdr = append(hdr, field{"e_entry", 24, 8}, field{"e_phoff", 32, 8}, field{"e_phentsize", 54, 2}, field{"e_phnum", 56, 2})
	phoff, phnum = field{"", 32, 8}.get(b), field{"", 56, 2}.get(b)
	for i := range int(phnum) {
		o := int(phoff) + i*testelf.Phdr64Size
		phdrs = append(phdrs, []field{{"p_type", o, 4}, {"p_flags", o + 4, 4}, {"p_offset", o + 8, 8}, {"p_vaddr", o + 16, 8},
			{"p_filesz", o + 32, 8}, {"p_memsz", o + 40, 8}, {"p_align", o + 48, 8}})
	}
	return hdr, phdrs
}

var progTypes = []uint64{
	uint64(elf.PT_NULL), uint64(elf.PT_LOAD), uint64(elf.PT_DYNAMIC), uint64(elf.PT_INTERP), uint64(elf.PT_NOTE),
	uint64(elf.PT_PHDR), uint64(elf.PT_TLS), uint64(elf.PT_GNU_STACK), uint64(elf.PT_GNU_RELRO), uint64(elf.PT_GNU_PROPERTY),
	uint64(elf.PT_LOPROC), uint64(elf.PT_LOPROC) + 1, 0x6474e550, 0xffffffff,
}

// interpTargets are names a PT_INTERP may be changed to.
func interpTargets(env *diffEnv) []string {
	return []string{systemLD, "/bin/sh", env.static, env.staticPIE, env.script, env.elf32, env.empty, env.noExec,
		env.dir, "/nonexistent", "ld.so", "/", "/lib64/", systemLD + "/x", "/dev/null", "/proc/self/exe"}
}

// mutateELF changes 1 to 3 things of an ELF file.
func mutateELF(r *rand.Rand, env *diffEnv, b []byte) ([]byte, []string) {
	hdr, phdrs := elfFields(b)
	var ops []string
	for n := 1 + r.IntN(3); n > 0; n-- {
		switch k := r.IntN(20); {
		case k < 4: // a header field
			f := hdr[r.IntN(len(hdr))]
			var v uint64
			switch f.name {
			case "e_type":
				v = []uint64{0, 1, 2, 3, 4, 0xfe00, 0xffff}[r.IntN(7)]
			case "e_machine":
				v = []uint64{uint64(elf.EM_X86_64), uint64(elf.EM_386), uint64(elf.EM_486), uint64(elf.EM_AARCH64), 0, 0xffff}[r.IntN(6)]
			case "e_phentsize":
				v = []uint64{0, 32, 55, 56, 57, 64, 0xffff}[r.IntN(7)]
			case "e_phnum":
				v = []uint64{0, 1, 2, 3, f.get(b) + 1, 1170, 1171, 2048, 2049, 0xffff}[r.IntN(10)]
			default:
				v = interesting(r, f.get(b), f.width)
			}
			f.set(b, v)
			ops = append(ops, fmt.Sprintf("%s=%#x", f.name, v))
		case k < 13 && len(phdrs) > 0: // a program header field
			i := r.IntN(len(phdrs))
			f := phdrs[i][r.IntN(len(phdrs[i]))]
			var v uint64
			switch f.name {
			case "p_type":
				v = progTypes[r.IntN(len(progTypes))]
			case "p_flags":
				v = uint64(r.IntN(8))
				if r.IntN(4) == 0 {
					v |= 1 << (3 + r.IntN(29))
				}
			case "p_align":
				v = []uint64{0, 1, 2, 0x800, 0x1000, 0x2000, 0x10000, 0x200000, 0x40000000, 1 << 47, 1 << 63, 0x1001, 0x3000}[r.IntN(13)]
			default:
				v = interesting(r, f.get(b), f.width)
			}
			f.set(b, v)
			ops = append(ops, fmt.Sprintf("phdr[%d].%s=%#x", i, f.name, v))
		case k < 15: // PT_INTERP
			b, ops = mutateInterp(r, env, b, phdrs, ops)
		case k < 18: // the length of the file
			var l int
			switch r.IntN(4) {
			case 0:
				l = r.IntN(len(b) + 1)
			case 1:
				l = []int{0, 1, 3, 4, 5, 16, 51, 52, 63, 64, 65}[r.IntN(11)]
			case 2:
				l = len(b) - 1 - r.IntN(0x100)
			default:
				l = len(b) + r.IntN(0x3000)
			}
			l = max(l, 0)
			if l <= len(b) {
				b = b[:l]
			} else {
				b = append(b, make([]byte, l-len(b))...)
			}
			ops = append(ops, fmt.Sprintf("length=%d", l))
		default: // a random byte of the headers
			n := min(len(b), 64+len(phdrs)*testelf.Phdr64Size)
			if n == 0 {
				continue
			}
			i := r.IntN(n)
			v := byte(r.UintN(256))
			b[i] = v
			ops = append(ops, fmt.Sprintf("byte[%d]=%#x", i, v))
		}
	}
	return b, ops
}

// mutateInterp adds a PT_INTERP (a PT_NOTE becomes one) or changes the
// existing one: its name, its NUL, its size and offset.
func mutateInterp(r *rand.Rand, env *diffEnv, b []byte, phdrs [][]field, ops []string) ([]byte, []string) {
	var ph []field
	for _, p := range phdrs {
		if t := p[0].get(b); t == uint64(elf.PT_INTERP) {
			ph = p
			break
		}
	}
	get := func(name string) field {
		for _, f := range ph {
			if f.name == name {
				return f
			}
		}
		panic(name)
	}
	if ph == nil {
		// Make the PT_GNU_STACK (or the last header) a PT_INTERP with
		// its string at the end of the file.
		if len(phdrs) == 0 {
			return b, ops
		}
		ph = phdrs[len(phdrs)-1]
		for _, p := range phdrs {
			if p[0].get(b) == uint64(elf.PT_GNU_STACK) {
				ph = p
			}
		}
		name := interpTargets(env)[r.IntN(len(interpTargets(env)))]
		off := uint64(len(b))
		b = append(b, append([]byte(name), 0)...)
		get("p_type").set(b, uint64(elf.PT_INTERP))
		get("p_offset").set(b, off)
		get("p_filesz").set(b, uint64(len(name)+1))
		return b, append(ops, fmt.Sprintf("new PT_INTERP %q", name))
	}
	off, size := get("p_offset").get(b), get("p_filesz").get(b)
	switch r.IntN(6) {
	case 0, 1: // another name, same place if it fits, else at the end
		name := interpTargets(env)[r.IntN(len(interpTargets(env)))]
		s := append([]byte(name), 0)
		if uint64(len(s)) <= size && fits(off, size, len(b)) {
			copy(b[off:], s)
		} else {
			off = uint64(len(b))
			b = append(b, s...)
			get("p_offset").set(b, off)
		}
		get("p_filesz").set(b, uint64(len(s)))
		return b, append(ops, fmt.Sprintf("PT_INTERP %q", name))
	case 2: // the NUL, removed or moved
		if fits(off, size, len(b)) && size > 0 {
			i := off + uint64(r.IntN(int(size)))
			if r.IntN(2) == 0 {
				i = off + size - 1
				b[i] = 'x'
			} else {
				b[i] = 0
			}
			return b, append(ops, fmt.Sprintf("PT_INTERP byte %d is %q", i-off, b[i]))
		}
	case 3: // the size
		v := []uint64{0, 1, 2, size - 1, size + 1, 4095, 4096, 4097, 1 << 20}[r.IntN(9)]
		get("p_filesz").set(b, v)
		return b, append(ops, fmt.Sprintf("PT_INTERP p_filesz=%#x", v))
	case 4: // the offset
		v := interesting(r, off, 8)
		get("p_offset").set(b, v)
		return b, append(ops, fmt.Sprintf("PT_INTERP p_offset=%#x", v))
	}
	// A second PT_INTERP after the first: only the first counts.
	for _, p := range phdrs {
		if t := p[0].get(b); t == uint64(elf.PT_GNU_STACK) || t == uint64(elf.PT_NOTE) {
			p[0].set(b, uint64(elf.PT_INTERP))
			for i, f := range p {
				f.set(b, ph[i].get(b))
			}
			return b, append(ops, "a second PT_INTERP")
		}
	}
	return b, ops
}

// mutateScript changes the #! line of a script.
func mutateScript(r *rand.Rand, env *diffEnv, self string, b []byte) ([]byte, []string) {
	nl := bytes.IndexByte(b, '\n')
	line, rest := string(b[:nl]), string(b[nl:])
	var ops []string
	// pos is a place in the line after #!.
	pos := func() int {
		if len(line) <= 2 {
			return len(line)
		}
		return 2 + r.IntN(len(line)-1)
	}
	for n := 1 + r.IntN(2); n > 0; n-- {
		switch r.IntN(12) {
		case 0: // blanks somewhere after #!
			i := pos()
			s := []string{" ", "\t", "  \t", " \t "}[r.IntN(4)]
			line = line[:i] + s + line[i:]
			ops = append(ops, fmt.Sprintf("blanks %q at %d", s, i))
		case 1: // a NUL
			i := pos()
			line = line[:i] + "\x00" + line[i:]
			ops = append(ops, fmt.Sprintf("NUL at %d", i))
		case 2: // CR at the end
			line += "\r"
			ops = append(ops, "CR at the end")
		case 3: // no newline within the buffer
			rest = strings.TrimPrefix(rest, "\n")
			line += strings.Repeat([]string{" ", "x", "\t"}[r.IntN(3)], r.IntN(300))
			ops = append(ops, "no newline")
		case 4, 5: // a line of about 256 bytes: padded name or argument
			want := 250 + r.IntN(12)
			if r.IntN(2) == 0 && strings.HasPrefix(line, "#!/") {
				// Extra slashes: the same interpreter, a longer name.
				for len(line) < want {
					line = "#!/" + line[2:]
				}
			} else {
				if !strings.Contains(line[min(2, len(line)):], " ") {
					line += " "
				}
				line += strings.Repeat("a", max(want-len(line), 0))
			}
			ops = append(ops, fmt.Sprintf("line of %d bytes", len(line)))
		case 6: // another interpreter
			name := append(interpTargets(env), "/bin/sh\r", "/bin/true", "sh", "/bin/s", "/bin/shh", "")[r.IntN(len(interpTargets(env))+6)]
			line = "#!" + name + " -x"
			ops = append(ops, fmt.Sprintf("interpreter %q", name))
		case 7: // only blanks, nothing
			line = []string{"#!", "#! ", "#!\t \t", "#!" + strings.Repeat(" ", 260)}[r.IntN(4)]
			ops = append(ops, fmt.Sprintf("line %q", line))
		case 8: // the script names itself
			line = "#!" + self
			ops = append(ops, "names itself")
		case 9: // a character of the name changed
			i := pos()
			if i >= len(line) {
				continue
			}
			c := "/. x\x01\xff"[r.IntN(6)]
			line = line[:i] + string(c) + line[i+1:]
			ops = append(ops, fmt.Sprintf("byte %d is %q", i, c))
		case 10: // truncated
			n := r.IntN(len(line) + 1)
			line, rest = line[:n], ""
			ops = append(ops, fmt.Sprintf("file of %d bytes", n))
		default: // not a script
			line = "#" + line[min(2, len(line)):]
			ops = append(ops, "no #!")
		}
	}
	return []byte(line + rest), ops
}

// makeMutant builds mutant i of the run with the given seed, to be
// written at path (and its interpreter, for a seed that mutates it, at
// path+".ld").
func makeMutant(runSeed uint64, i int, seeds []diffSeed, env *diffEnv, path string) *mutant {
	interp := path + ".ld"
	r := rand.New(rand.NewPCG(runSeed, uint64(i)))
	s := &seeds[r.IntN(len(seeds))]
	m := &mutant{seed: s, index: i}
	m.main, m.ld = s.build(env, interp)
	switch {
	case s.script:
		m.main, m.ops = mutateScript(r, env, path, m.main)
	case m.ld != nil:
		m.ld, m.ops = mutateELF(r, env, m.ld)
		m.ops = append([]string{"the loader:"}, m.ops...)
	default:
		m.main, m.ops = mutateELF(r, env, m.main)
	}
	return m
}

// fits reports whether [off, off+size) lies within a file of n bytes,
// without the wrap of off+size a mutated header can give.
func fits(off, size uint64, n int) bool {
	return off <= uint64(n) && size <= uint64(n)-off
}
