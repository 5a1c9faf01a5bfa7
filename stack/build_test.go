package stack

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"testing"

	"github.com/uexec/uexec/vm"
)

// decoded is an initial stack read back the way a program's startup code
// reads it.
type decoded struct {
	argc       uint64
	argv, envp []string
	argvPtr    []uint64
	envpPtr    []uint64
	auxv       []AuxEntry
}

// decode reads mem = [sp, top) with words of word bytes.
func decode(mem []byte, sp uint64, word int) (*decoded, error) {
	top := sp + uint64(len(mem))
	rd := func(addr uint64) (uint64, error) {
		if addr < sp || addr+uint64(word) > top {
			return 0, fmt.Errorf("word at %#x outside [%#x, %#x)", addr, sp, top)
		}
		b := mem[addr-sp:]
		if word == 8 {
			return binary.LittleEndian.Uint64(b), nil
		}
		return uint64(binary.LittleEndian.Uint32(b)), nil
	}
	str := func(addr uint64) (string, error) {
		if addr < sp || addr >= top {
			return "", fmt.Errorf("string at %#x outside the stack", addr)
		}
		b := mem[addr-sp:]
		i := bytes.IndexByte(b, 0)
		if i < 0 {
			return "", fmt.Errorf("string at %#x not terminated", addr)
		}
		return string(b[:i]), nil
	}
	d := &decoded{}
	var err error
	if d.argc, err = rd(sp); err != nil {
		return nil, err
	}
	at := sp + uint64(word)
	vec := func(n int) ([]string, []uint64, error) {
		var ss []string
		var ps []uint64
		for i := 0; n < 0 || i < n; i++ {
			p, err := rd(at)
			if err != nil {
				return nil, nil, err
			}
			at += uint64(word)
			if p == 0 {
				if n >= 0 {
					return nil, nil, fmt.Errorf("vector ends after %d of %d", i, n)
				}
				return ss, ps, nil
			}
			s, err := str(p)
			if err != nil {
				return nil, nil, err
			}
			ss, ps = append(ss, s), append(ps, p)
		}
		p, err := rd(at)
		if err != nil || p != 0 {
			return nil, nil, fmt.Errorf("vector not NULL-terminated: %v", err)
		}
		at += uint64(word)
		return ss, ps, nil
	}
	if d.argv, d.argvPtr, err = vec(int(d.argc)); err != nil {
		return nil, fmt.Errorf("argv: %w", err)
	}
	if d.envp, d.envpPtr, err = vec(-1); err != nil {
		return nil, fmt.Errorf("envp: %w", err)
	}
	for {
		t, err := rd(at)
		if err != nil {
			return nil, err
		}
		v, err := rd(at + uint64(word))
		if err != nil {
			return nil, err
		}
		at += 2 * uint64(word)
		d.auxv = append(d.auxv, AuxEntry{AuxType(t), v})
		if t == 0 {
			return d, nil
		}
	}
}

func auxValue(v []AuxEntry, t AuxType) (uint64, bool) {
	for _, e := range v {
		if e.Type == t {
			return e.Value, true
		}
	}
	return 0, false
}

var testHost = &Host{HWCap: 0x178bfbff, HWCap2: 2, MinSigStkSz: 3376, HasMinSigStkSz: true,
	ClkTck: 100, HasRseq: true, RseqFeatureSize: 28, RseqAlign: 32}

func TestBuild(t *testing.T) {
	info := &AuxInfo{SysinfoEHDR: 0x7ffff7fc1000, Sysinfo: 0xf7fc1560, Phdr: 0x555555554040, Phent: 56, Phnum: 13,
		Base: 0x7ffff7fc3000, Entry: 0x555555556000, UID: 1, EUID: 2, GID: 3, EGID: 4}
	for _, tc := range []struct {
		name       string
		argv, envp []string
		execfn     string
		top        vm.Addr
		gap        uint64
		compat     bool
	}{
		{name: "simple", argv: []string{"/bin/true"}, envp: []string{"A=1", "B=2"}, execfn: "/bin/true", top: 0x7ffffffff000},
		{name: "no env", argv: []string{"a", "bb", "ccc"}, execfn: "./x", top: 0x7ffffffff000},
		{name: "argc 0", argv: nil, envp: []string{"X="}, execfn: "p", top: 0x7ffffffff000},
		{name: "gap", argv: []string{"a"}, envp: []string{"E=e"}, execfn: "/a", top: 0x7ffffff00000, gap: 4097},
		{name: "odd lengths", argv: []string{"", "1", "22", "333", "4444"}, envp: []string{"", "x"}, execfn: "/abcdefg", top: 0x7ffffffff000, gap: 15},
		{name: "compat", argv: []string{"/bin/true", "x"}, envp: []string{"A=1"}, execfn: "/bin/true", top: 0xFFFFE000, compat: true},
		{name: "compat gap", argv: []string{"a"}, execfn: "a", top: 0xFFFFE000, compat: true, gap: 8191},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := NewArgs(tc.argv, tc.envp, tc.execfn, 8<<20)
			if err != nil {
				t.Fatal(err)
			}
			aux, word := Auxv64(testHost, info), 8
			if tc.compat {
				in := *info
				in.Phdr, in.Base, in.Entry, in.SysinfoEHDR, in.Phent = 0x56555034, 0xf7fc3000, 0x56556000, 0xf7fc1000, 32
				aux, word = Auxv32(testHost, &in), 4
			}
			img := &Image{Top: tc.top, Args: a, Gap: tc.gap, Auxv: aux, Compat: tc.compat}
			copy(img.Random[:], "0123456789abcdef")
			l, err := Build(img)
			if err != nil {
				t.Fatal(err)
			}
			checkLayout(t, l, img, word)
		})
	}
}

func checkLayout(t *testing.T, l *Layout, img *Image, word int) {
	t.Helper()
	a := img.Args
	if uint64(l.SP)%16 != 0 {
		t.Errorf("SP %v not 16-byte aligned", l.SP)
	}
	if uint64(l.SP)+uint64(len(l.Bytes)) != uint64(img.Top) {
		t.Fatalf("Bytes cover [%v, %#x), want up to %v", l.SP, uint64(l.SP)+uint64(len(l.Bytes)), img.Top)
	}
	d, err := decode(l.Bytes, uint64(l.SP), word)
	if err != nil {
		t.Fatal(err)
	}
	if int(d.argc) != len(a.Argv) || l.Argc != len(a.Argv) || !slices.Equal(d.argv, a.Argv) {
		t.Errorf("argc %d argv %q, want %q", d.argc, d.argv, a.Argv)
	}
	if !slices.Equal(d.envp, a.Envp) {
		t.Errorf("envp %q, want %q", d.envp, a.Envp)
	}
	if l.ArgvAddr != l.SP+vm.Addr(word) || l.EnvpAddr != l.ArgvAddr+vm.Addr((len(a.Argv)+1)*word) ||
		l.AuxvAddr != l.EnvpAddr+vm.Addr((len(a.Envp)+1)*word) {
		t.Errorf("vector addresses %v %v %v for SP %v", l.ArgvAddr, l.EnvpAddr, l.AuxvAddr, l.SP)
	}
	if !slices.Equal(d.auxv, l.Auxv) {
		t.Errorf("auxv on the stack %v, Layout.Auxv %v", d.auxv, l.Auxv)
	}
	// Strings: argv then envp then execfn, contiguous, ending 8 bytes
	// below the top.
	want := l.ArgStart
	for i, p := range d.argvPtr {
		if vm.Addr(p) != want {
			t.Errorf("argv[%d] at %#x, want %v", i, p, want)
		}
		want += vm.Addr(len(a.Argv[i]) + 1)
	}
	if want != l.ArgEnd || l.ArgEnd != l.EnvStart {
		t.Errorf("ArgEnd %v EnvStart %v, argv strings end at %v", l.ArgEnd, l.EnvStart, want)
	}
	for i, p := range d.envpPtr {
		if vm.Addr(p) != want {
			t.Errorf("envp[%d] at %#x, want %v", i, p, want)
		}
		want += vm.Addr(len(a.Envp[i]) + 1)
	}
	if want != l.EnvEnd || l.EnvEnd != l.ExecFnAddr {
		t.Errorf("EnvEnd %v ExecFnAddr %v, env strings end at %v", l.EnvEnd, l.ExecFnAddr, want)
	}
	if got := l.ExecFnAddr + vm.Addr(len(a.ExecFn)+1+8); got != img.Top {
		t.Errorf("execfn ends at %v + 8, want the top %v", got-8, img.Top)
	}
	if !bytes.Equal(l.Bytes[len(l.Bytes)-8:], make([]byte, 8)) {
		t.Errorf("top 8 bytes not zero")
	}
	str := func(addr vm.Addr) string {
		b := l.Bytes[addr-l.SP:]
		return string(b[:bytes.IndexByte(b, 0)])
	}
	plat := "x86_64"
	if img.Compat {
		plat = "i686"
	}
	for _, c := range []struct {
		t    AuxType
		addr vm.Addr
	}{{AT_EXECFN, l.ExecFnAddr}, {AT_RANDOM, l.RandomAddr}, {AT_PLATFORM, l.PlatformAddr}} {
		if v, ok := auxValue(d.auxv, c.t); !ok || v != uint64(c.addr) {
			t.Errorf("%v = %#x, want %v", c.t, v, c.addr)
		}
	}
	if s := str(l.ExecFnAddr); s != a.ExecFn {
		t.Errorf("AT_EXECFN string %q, want %q", s, a.ExecFn)
	}
	if s := str(l.PlatformAddr); s != plat {
		t.Errorf("AT_PLATFORM string %q, want %q", s, plat)
	}
	if l.RandomAddr+16 != l.PlatformAddr {
		t.Errorf("AT_RANDOM %v not right below AT_PLATFORM %v", l.RandomAddr, l.PlatformAddr)
	}
	if r := l.Bytes[l.RandomAddr-l.SP:][:16]; !bytes.Equal(r, img.Random[:]) {
		t.Errorf("AT_RANDOM bytes %x", r)
	}
	if wantPlat := ((l.ArgStart - vm.Addr(img.Gap)) &^ 15) - vm.Addr(len(plat)+1); l.PlatformAddr != wantPlat {
		t.Errorf("AT_PLATFORM at %v, want %v", l.PlatformAddr, wantPlat)
	}
	// Everything between the end of the aux vector and AT_RANDOM is
	// padding, and so is the gap.
	auxEnd := l.AuxvAddr + vm.Addr(len(l.Auxv)*2*word)
	if auxEnd > l.RandomAddr {
		t.Errorf("aux vector ends at %v above AT_RANDOM %v", auxEnd, l.RandomAddr)
	}
	if l.RandomAddr-auxEnd >= 16 {
		t.Errorf("%d bytes of padding below AT_RANDOM, want < 16", l.RandomAddr-auxEnd)
	}
	if !bytes.Equal(l.Bytes[auxEnd-l.SP:l.RandomAddr-l.SP], make([]byte, l.RandomAddr-auxEnd)) {
		t.Errorf("padding not zero")
	}
}

func TestAuxvOrder(t *testing.T) {
	names := func(v []AuxEntry) []AuxType {
		var out []AuxType
		for _, e := range v {
			out = append(out, e.Type)
		}
		return out
	}
	want64 := []AuxType{AT_SYSINFO_EHDR, AT_MINSIGSTKSZ, AT_HWCAP, AT_PAGESZ, AT_CLKTCK, AT_PHDR,
		AT_PHENT, AT_PHNUM, AT_BASE, AT_FLAGS, AT_ENTRY, AT_UID, AT_EUID, AT_GID, AT_EGID,
		AT_SECURE, AT_RANDOM, AT_HWCAP2, AT_EXECFN, AT_PLATFORM, AT_RSEQ_FEATURE_SIZE, AT_RSEQ_ALIGN, AT_NULL}
	info := &AuxInfo{SysinfoEHDR: 1}
	if got := names(Auxv64(testHost, info)); !slices.Equal(got, want64) {
		t.Errorf("Auxv64 order %v,\nwant %v", got, want64)
	}
	want32 := append([]AuxType{AT_SYSINFO}, want64...)
	if got := names(Auxv32(testHost, info)); !slices.Equal(got, want32) {
		t.Errorf("Auxv32 order %v,\nwant %v", got, want32)
	}
	info = &AuxInfo{HasExecFD: true, ExecFD: 3}
	h := &Host{}
	want := []AuxType{AT_HWCAP, AT_PAGESZ, AT_CLKTCK, AT_PHDR,
		AT_PHENT, AT_PHNUM, AT_BASE, AT_FLAGS, AT_ENTRY, AT_UID, AT_EUID, AT_GID, AT_EGID,
		AT_SECURE, AT_RANDOM, AT_HWCAP2, AT_EXECFN, AT_PLATFORM, AT_EXECFD, AT_NULL}
	v := Auxv64(h, info)
	if got := names(v); !slices.Equal(got, want) {
		t.Errorf("Auxv64 without vdso, minsigstksz, rseq, with execfd: %v,\nwant %v", got, want)
	}
	if c, _ := auxValue(v, AT_CLKTCK); c != 100 {
		t.Errorf("AT_CLKTCK default %d, want 100", c)
	}
}

// TestBuildCompatTruncates: a compat aux vector is of 32-bit words, and an
// AT_ENTRY past 4 GiB (e_entry plus a load bias) is truncated, as the
// kernel's NEW_AUX_ENT does, not refused (fuzzer seed 504, mutant 8354: the
// kernel completes that exec).
func TestBuildCompatTruncates(t *testing.T) {
	a, err := NewArgs([]string{"a"}, nil, "a", 8<<20)
	if err != nil {
		t.Fatal(err)
	}
	l, err := Build(&Image{Top: 0xFFFFE000, Args: a, Compat: true, Auxv: []AuxEntry{{AT_ENTRY, 0x155cad000}}})
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := auxValue(l.Auxv, AT_ENTRY); !ok || v != 0x55cad000 {
		t.Errorf("AT_ENTRY %#x (%v), want 0x55cad000", v, ok)
	}
	off := uint64(l.AuxvAddr-l.SP) + 4
	if got := binary.LittleEndian.Uint32(l.Bytes[off:]); got != 0x55cad000 {
		t.Errorf("AT_ENTRY on the stack %#x, want 0x55cad000", got)
	}
}

func TestBuildErrors(t *testing.T) {
	a, err := NewArgs([]string{"a"}, nil, "a", 8<<20)
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range []*Image{
		{Top: 0, Args: a, Auxv: Auxv64(testHost, &AuxInfo{})},
		{Top: 0x7ffffffff000, Args: a, Compat: true},
		{Top: 0x7ffffffff001, Args: a},
		{Top: 0x7ffffffff000},
	} {
		if _, err := Build(img); err == nil {
			t.Errorf("Build(top %v compat %v) succeeded", img.Top, img.Compat)
		}
	}
}
