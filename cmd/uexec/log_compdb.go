package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// uexec log compdb: the compilation database Bear 3 (citnames) makes of
// the same executions. Bear's rules, from its source (ToolGcc.cc,
// ToolClang.cc, Parsers.cc, Semantic.cc, Output.cc of release 3.1):
//
//   - a compiler is recognised by the base name of the file exec'd (not
//     argv[0]): cc, c++, cxx, CC, [prefix-]gcc, g++, mcc, m++, gfortran and
//     fortran, clang and clang++, each with an optional version suffix
//     (x86_64-linux-gnu-gcc-12, clang-16);
//   - argv[1:] are parsed with a table of flags (below), anything with a
//     source extension is a source, anything else is kept as is;
//   - a call with no argument, --help, --version or --target-help is a
//     query, one with -E, -M or -MM a preprocessing: neither is kept; nor
//     is a call without a source file (linking only);
//   - the entry's arguments are the executable, "-c" when the call links
//     (none of -c, -S, -E), the flags but the sources, -o and its value,
//     linker flags (-l, -L, -Wl,..., -static, -shared, ...) and make
//     dependency flags (-MD, -MF x, ...), then "-o OUTPUT" if given, then the
//     source; one entry per source file;
//   - "file" and "output" are made absolute against "directory" (the cwd
//     of the exec), with "." and ".." removed lexically; no "output"
//     without -o;
//   - a later entry with the same file and output as an earlier one is
//     dropped; the order is that of the execs.
//
// Not reproduced: the include flags Bear adds from CPATH, C_INCLUDE_PATH,
// CPLUS_INCLUDE_PATH and OBJC_INCLUDE_PATH (the log has no environment),
// clang's own flag table beyond its output kinds (flags of clang that take
// a separate value, mostly Darwin ones, are parsed as gcc's), and Bear's
// wrappers (ccache, distcc) and CUDA.

// compdbEntry is one entry of compile_commands.json, with Bear's key order.
type compdbEntry struct {
	Arguments []string `json:"arguments"`
	Directory string   `json:"directory"`
	File      string   `json:"file"`
	Output    string   `json:"output,omitempty"`
}

// gccName is Bear's pattern for gcc's names,
//
//	^(cc|c\+\+|cxx|CC|(([^-]*-)*([mg](cc|\+\+)|[g]?fortran)(-?\d+(\.\d+){0,2})?))$
//
// written out (package regexp would cost every start of uexec its
// initialisation; TestCompilerNames compares the two).
func gccName(base string) bool {
	switch base {
	case "cc", "c++", "cxx", "CC":
		return true
	}
	return toolName(base, "mcc", "gcc", "m++", "g++", "gfortran", "fortran")
}

// clangName is Bear's ^([^-]*-)*clang(|\+\+)(-?\d+(\.\d+){0,2})?$.
func clangName(base string) bool { return toolName(base, "clang", "clang++") }

// toolName reports whether base is any number of "PREFIX-" parts, one of
// cores, and an optional version: -?\d+(\.\d+){0,2}.
func toolName(base string, cores ...string) bool {
	for k := 0; k <= len(base); k++ {
		if k > 0 && base[k-1] != '-' {
			continue
		}
		for _, c := range cores {
			if v, ok := strings.CutPrefix(base[k:], c); ok && toolVersion(v) {
				return true
			}
		}
	}
	return false
}

func toolVersion(v string) bool {
	if v == "" {
		return true
	}
	v = strings.TrimPrefix(v, "-")
	for part := 0; part < 3; part++ {
		n := 0
		for n < len(v) && v[n] >= '0' && v[n] <= '9' {
			n++
		}
		if n == 0 {
			return false
		}
		if v = v[n:]; v == "" {
			return true
		}
		if v[0] != '.' {
			return false
		}
		v = v[1:]
	}
	return false
}

func renderCompdb(w io.Writer, l *execLogFile) error {
	out := []compdbEntry{}
	seen := map[[2]string]bool{}
	for _, e := range l.Execs {
		if !e.Done() || len(e.Argv) == 0 {
			continue
		}
		base := filepath.Base(e.Path)
		var table map[string]flagDef
		switch {
		case gccName(base):
			table = tables().gcc
		case clangName(base):
			table = tables().clang
		default:
			continue
		}
		for _, ent := range compilations(table, e) {
			key := [2]string{ent.File, ent.Output}
			if seen[key] {
				continue
			}
			if _, err := os.Stat(ent.File); err != nil {
				// Bear writes only sources that exist (its
				// include_only_existing_source): one removed by
				// the build, or that never was, is left out.
				continue
			}
			seen[key] = true
			out = append(out, ent)
		}
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// flagKind is Bear's CompilerFlagType, as far as it matters here.
type flagKind int

const (
	kindOther     flagKind = iota
	kindNoLinking          // -c, -S, -E
	kindOutput             // -o
	kindInfo               // --help, --version
	kindMake               // -M, -MD, -MF ...: dropped
	kindLinker             // -l, -Wl, ...: dropped
	kindSource
)

// flagMatch is Bear's MatchInstruction, as far as its tables use it.
type flagMatch int

const (
	exactly        flagMatch = iota // the flag alone
	exactlySep                      // the flag and the next argument
	exactlyGlued                    // -Dx or -D x
	exactlyGluedEq                  // -std=c99 (not -std alone)
	prefix                          // any argument starting with the flag
)

type flagDef struct {
	match flagMatch
	kind  flagKind
}

// gccFlags is Bear's ToolGcc::FLAG_DEFINITION (kinds it keeps as is
// folded into kindOther).
func gccFlags() map[string]flagDef {
	return map[string]flagDef{
		"-x": {exactlySep, kindOther}, "-c": {exactly, kindNoLinking}, "-S": {exactly, kindNoLinking},
		"-E": {exactly, kindNoLinking}, "-o": {exactlySep, kindOutput},
		"-dumpbase": {exactlySep, kindOther}, "-dumpbase-ext": {exactlySep, kindOther}, "-dumpdir": {exactlySep, kindOther},
		"-v": {exactly, kindOther}, "-###": {exactly, kindOther},
		"--help": {prefix, kindInfo}, "--target-help": {exactly, kindInfo}, "--version": {exactly, kindInfo},
		"-pass-exit-codes": {exactly, kindOther}, "-pipe": {exactly, kindOther}, "-specs": {exactlyGluedEq, kindOther},
		"-wrapper": {exactlySep, kindOther}, "-ffile-prefix-map": {exactlyGluedEq, kindOther},
		"-fplugin": {exactlyGluedEq, kindOther}, "@": {prefix, kindOther},
		"-A": {exactlyGlued, kindOther}, "-D": {exactlyGlued, kindOther}, "-U": {exactlyGlued, kindOther},
		"-include": {exactlySep, kindOther}, "-imacros": {exactlySep, kindOther}, "-undef": {exactly, kindOther},
		"-pthread": {exactly, kindOther},
		"-M":       {exactly, kindMake}, "-MM": {exactly, kindMake}, "-MG": {exactly, kindMake}, "-MP": {exactly, kindMake},
		"-MD": {exactly, kindMake}, "-MMD": {exactly, kindMake}, "-MF": {exactlySep, kindMake},
		"-MT": {exactlySep, kindMake}, "-MQ": {exactlySep, kindMake},
		"-C": {exactly, kindOther}, "-CC": {exactly, kindOther}, "-P": {exactly, kindOther},
		"-traditional": {prefix, kindOther}, "-trigraphs": {exactly, kindOther}, "-remap": {exactly, kindOther},
		"-H": {exactly, kindOther}, "-Xpreprocessor": {exactlySep, kindOther}, "-Wp,": {prefix, kindOther},
		"-I": {exactlyGlued, kindOther}, "-iplugindir": {exactlyGluedEq, kindOther}, "-iquote": {exactlySep, kindOther},
		"-isystem": {exactlySep, kindOther}, "-idirafter": {exactlySep, kindOther}, "-iprefix": {exactlySep, kindOther},
		"-iwithprefix": {exactlySep, kindOther}, "-iwithprefixbefore": {exactlySep, kindOther},
		"-isysroot": {exactlySep, kindOther}, "-imultilib": {exactlySep, kindOther},
		"-L": {exactlyGlued, kindLinker}, "-B": {exactlyGlued, kindOther}, "--sysroot": {exactlyGluedEq, kindOther},
		"-flinker-output": {exactlyGluedEq, kindLinker}, "-fuse-ld": {exactlyGluedEq, kindLinker},
		"-l": {exactlyGlued, kindLinker}, "-nostartfiles": {exactly, kindLinker}, "-nodefaultlibs": {exactly, kindLinker},
		"-nolibc": {exactly, kindLinker}, "-nostdlib": {exactly, kindLinker}, "-e": {exactlySep, kindLinker},
		"-entry": {exactlyGluedEq, kindLinker}, "-pie": {exactly, kindLinker}, "-no-pie": {exactly, kindLinker},
		"-static-pie": {exactly, kindLinker}, "-r": {exactly, kindLinker}, "-rdynamic": {exactly, kindLinker},
		"-s": {exactly, kindLinker}, "-symbolic": {exactly, kindLinker}, "-static": {prefix, kindLinker},
		"-shared": {prefix, kindLinker}, "-T": {exactlySep, kindLinker}, "-Xlinker": {exactlySep, kindLinker},
		"-Wl,": {prefix, kindLinker}, "-u": {exactlySep, kindLinker}, "-z": {exactlySep, kindLinker},
		"-Xassembler": {exactlySep, kindOther}, "-Wa,": {prefix, kindOther}, "-ansi": {exactly, kindOther},
		"-aux-info": {exactlySep, kindOther}, "-std": {exactlyGluedEq, kindOther},
		"-O": {prefix, kindOther}, "-g": {prefix, kindOther}, "-f": {prefix, kindOther}, "-m": {prefix, kindOther},
		"-p": {prefix, kindOther}, "-W": {prefix, kindOther}, "-no": {prefix, kindOther}, "-tno": {prefix, kindOther},
		"-save": {prefix, kindOther}, "-d": {prefix, kindOther}, "-Q": {prefix, kindOther},
		"-X": {prefix, kindOther}, "-Y": {prefix, kindOther}, "--": {prefix, kindOther},
	}
}

// flagTables are the flag tables and their sorted names, built on first
// use.
type flagTables struct {
	gcc, clang           map[string]flagDef
	gccNames, clangNames []string
	sourceExts           map[string]bool
}

var tables = sync.OnceValue(func() *flagTables {
	t := &flagTables{gcc: gccFlags(), clang: clangFlags(), sourceExts: map[string]bool{}}
	t.gccNames, t.clangNames = namesOf(t.gcc), namesOf(t.clang)
	for _, e := range strings.Fields(sourceExtList) {
		t.sourceExts[e] = true
	}
	return t
})

// clangFlags are gcc's with clang's kinds of output added.
func clangFlags() map[string]flagDef {
	m := map[string]flagDef{"-cc1": {exactly, kindNoLinking}, "-emit-ast": {exactly, kindNoLinking}}
	for k, v := range gccFlags() {
		if _, ok := m[k]; !ok {
			m[k] = v
		}
	}
	return m
}

func namesOf(table map[string]flagDef) []string {
	names := make([]string, 0, len(table))
	for k := range table {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// sourceExtList are Bear's SourceMatcher's extensions.
const sourceExtList = `.h .hh .H .hp .hxx .hpp .HPP .h++ .tcc .c .C .cc .CC .c++ .C++ .cxx .cpp .cp
		.cu .m .mi .mm .M .mii .i .ii .s .S .sx .asm .f .for .ftn .F .FOR .fpp .FPP .FTN
		.f90 .f95 .f03 .f08 .F90 .F95 .F03 .F08 .go .brig .d .di .dd .ads .abd`

// lookupFlag is Bear's FlagParser::lookup: how many arguments arg takes
// as a flag of table, and its kind; n 0 when it is no flag.
func lookupFlag(table map[string]flagDef, names []string, arg string) (n int, kind flagKind) {
	if d, ok := table[arg]; ok && d.match != exactlyGluedEq {
		if d.match == exactlySep || d.match == exactlyGlued {
			return 2, d.kind
		}
		return 1, d.kind
	}
	for _, name := range names {
		extra, ok := strings.CutPrefix(arg, name)
		if !ok || extra == "" {
			continue
		}
		d := table[name]
		if extra[0] == '=' {
			if d.match == exactlyGluedEq {
				return 1, d.kind
			}
			continue
		}
		if d.match == exactlyGlued || d.match == prefix {
			return 1, d.kind
		}
	}
	return 0, 0
}

type parsedFlag struct {
	args []string
	kind flagKind
}

// compilations returns the entries of one compiler call.
func compilations(table map[string]flagDef, e *logExec) []compdbEntry {
	t := tables()
	names := t.gccNames
	if len(table) != len(t.gcc) {
		names = t.clangNames
	}
	var flags []parsedFlag
	args := e.Argv[1:]
	for len(args) > 0 {
		a := args[0]
		n, kind := lookupFlag(table, names, a)
		switch {
		case n > 0 && n <= len(args):
		case n > len(args):
			n, kind = 1, kindOther // Bear: the flag does not parse; taken as an object file
		case a == "":
			return nil // Bear fails the parse on an empty argument
		case t.sourceExts[extOf(a)]:
			n, kind = 1, kindSource
		default:
			n, kind = 1, kindOther
		}
		flags = append(flags, parsedFlag{args[:n], kind})
		args = args[n:]
	}
	if len(flags) == 0 {
		return nil
	}
	linking := true
	var kept, sources []string
	output := ""
	for _, f := range flags {
		switch f.kind {
		case kindInfo:
			return nil
		case kindMake:
			if f.args[0] == "-M" || f.args[0] == "-MM" {
				return nil
			}
			continue
		case kindNoLinking:
			if f.args[0] == "-E" {
				return nil
			}
			linking = false
		case kindSource:
			sources = append(sources, f.args[0])
			continue
		case kindOutput:
			output = f.args[len(f.args)-1]
			continue
		case kindLinker:
			continue
		}
		kept = append(kept, f.args...)
	}
	if len(sources) == 0 {
		return nil
	}
	if linking {
		kept = append([]string{"-c"}, kept...)
	}
	var out []compdbEntry
	for _, src := range sources {
		ent := compdbEntry{Directory: e.Cwd, File: lexicalAbs(e.Cwd, src)}
		ent.Arguments = append([]string{e.Given}, kept...) // as exec'd, as Bear has it
		if output != "" {
			ent.Output = lexicalAbs(e.Cwd, output)
			ent.Arguments = append(ent.Arguments, "-o", output)
		}
		ent.Arguments = append(ent.Arguments, src)
		out = append(out, ent)
	}
	return out
}

// extOf is Bear's take_extension: from the last dot on, or the whole
// argument without one.
func extOf(a string) string {
	if i := strings.LastIndexByte(a, '.'); i >= 0 {
		return a[i:]
	}
	return a
}

// lexicalAbs is Bear's abspath: p against dir, "." and ".." removed
// without looking at the file system.
func lexicalAbs(dir, p string) string {
	if !filepath.IsAbs(p) {
		p = dir + "/" + p
	}
	var parts []string
	for _, c := range strings.Split(p, "/") {
		switch c {
		case "", ".":
		case "..":
			if len(parts) > 0 {
				parts = parts[:len(parts)-1]
			}
		default:
			parts = append(parts, c)
		}
	}
	return "/" + strings.Join(parts, "/")
}
