package stack

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/uexec/uexec/vm"
	"golang.org/x/sys/unix"
)

// buildC compiles testdata/name.c into a temporary directory. Tests that
// need it are skipped where there is no C compiler or not x86-64 Linux.
func buildC(t *testing.T, name string) string {
	t.Helper()
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("native comparison needs linux/amd64")
	}
	cc, err := exec.LookPath("gcc")
	if err != nil {
		if cc, err = exec.LookPath("cc"); err != nil {
			t.Skip("no C compiler")
		}
	}
	out := filepath.Join(t.TempDir(), name)
	src, err := filepath.Abs(filepath.Join("testdata", name+".c"))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(cc, "-O2", "-o", out, src).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", cc, src, err, b)
	}
	return out
}

// launch runs the launcher with args and the environment env, and returns
// the program's stdout, or the errno the launcher's execve failed with. A
// program killed by SIGSEGV got past execve's argument checks and failed
// after the point of no return (a stack too small for its strings): that
// counts as success with no output.
func launch(t *testing.T, launcher, dir string, env []string, args ...string) ([]byte, unix.Errno) {
	t.Helper()
	cmd := exec.Command(launcher, args...)
	cmd.Env = env
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 127 {
		n, err := strconv.Atoi(strings.TrimSpace(string(out)))
		if err != nil {
			t.Fatalf("launcher output %q", out)
		}
		return nil, unix.Errno(n)
	}
	if errors.As(err, &ee) && ee.ProcessState.Sys().(syscall.WaitStatus).Signal() == syscall.SIGSEGV {
		// Past the point of no return: the arguments were accepted.
		t.Logf("launcher %q: %v", args[:min(len(args), 8)], err)
		return nil, 0
	}
	if err != nil {
		t.Fatalf("launcher %q: %v\n%s", args, err, stderr.Bytes())
	}
	return out, 0
}

// TestNativeArgLimits compares NewArgs with the kernel at the E2BIG edges.
func TestNativeArgLimits(t *testing.T) {
	launcher := buildC(t, "launcher")
	const maxStr = MaxArgStrLen - 1
	for _, tc := range []struct {
		name  string
		rlim  string
		n, l  int
		env   []string
		fits  bool
		extra []string
	}{
		{name: "15 at 8MiB", rlim: "8388608", n: 15, l: maxStr, fits: true},
		{name: "16 at 8MiB", rlim: "8388608", n: 16, l: maxStr},
		{name: "1 at 1MiB", rlim: "1048576", n: 1, l: maxStr, fits: true},
		{name: "2 at 1MiB", rlim: "1048576", n: 2, l: maxStr},
		{name: "47 unlimited", rlim: "unlimited", n: 47, l: maxStr, fits: true},
		{name: "48 unlimited", rlim: "unlimited", n: 48, l: maxStr},
		{name: "string over MAX_ARG_STRLEN", rlim: "unlimited", n: 1, l: MaxArgStrLen},
		// 1 MiB: 262144 - 3 pointers = 262120 for "/bin/true" twice (20)
		// and two strings of l+1.
		{name: "exact fit at 1MiB", rlim: "1048576", n: 2, l: 131049, fits: true},
		{name: "one byte over at 1MiB", rlim: "1048576", n: 2, l: 131050},
		// An env string "A=1" costs 4 bytes and a pointer.
		{name: "exact fit with env", rlim: "1048576", n: 2, l: 131043, env: []string{"A=1"}, fits: true},
		{name: "one over with env", rlim: "1048576", n: 2, l: 131044, env: []string{"A=1"}},
		{name: "floor 128KiB exact", rlim: "524288", n: 1, l: 131072 - 16 - 20 - 1, fits: true},
		{name: "floor 128KiB over", rlim: "524288", n: 1, l: 131072 - 16 - 20},
		// Below 128 KiB the new stack's growth is the limit: 8 bytes and
		// the strings must fit in RLIMIT_STACK, except in the first page.
		{name: "growth 64KiB exact", rlim: "65536", n: 1, l: 65536 - 8 - 20 - 1, fits: true},
		{name: "growth 64KiB over", rlim: "65536", n: 1, l: 65536 - 8 - 20},
		{name: "growth first page", rlim: "0", n: 1, l: 4096 - 8 - 20 - 1, fits: true},
		{name: "growth second page", rlim: "0", n: 1, l: 4096 - 8 - 20},
		{name: "growth unaligned limit", rlim: "8000", n: 1, l: 4096 - 8 - 20, fits: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			argv := append([]string{"/bin/true"}, bigs(tc.n, tc.l)...)
			rlim := RlimInfinity
			if tc.rlim != "unlimited" {
				rlim, _ = strconv.ParseUint(tc.rlim, 10, 64)
			}
			_, err := NewArgs(argv, tc.env, "/bin/true", rlim)
			_, errno := launch(t, launcher, "", tc.env, "-s", tc.rlim, "-n", fmt.Sprint(tc.n), "-l", fmt.Sprint(tc.l), "/bin/true", "/bin/true")
			if (errno == 0) != tc.fits {
				t.Errorf("kernel: errno %v, want fits=%v", errno, tc.fits)
			}
			if (err == nil) != (errno == 0) || (err != nil && !errors.Is(err, errno)) {
				t.Errorf("NewArgs: %v; kernel: %v", err, errno)
			}
		})
	}
}

// TestNativeStackLayout runs a program natively without address
// randomization and compares its initial stack, byte for byte, with what
// Build lays out for the same argv, envp and file name.
func TestNativeStackLayout(t *testing.T) {
	launcher := buildC(t, "launcher")
	dump := buildC(t, "dumpstack")
	dir := filepath.Dir(dump)
	host, err := HostFromProc()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		path string // as passed to execve; "" is the absolute path
		argv []string
		env  []string
	}{
		{name: "simple", argv: []string{"dumpstack"}, env: []string{"A=1"}},
		{name: "relative path", path: "./dumpstack", argv: []string{"x", "y"}, env: []string{"PATH=/bin", "HOME=/"}},
		{name: "argc 0", argv: nil, env: []string{"E=1"}},
		{name: "no env", argv: []string{"a", "", "ccc"}},
		{name: "odd lengths", argv: []string{"1", "22", "333", "4444", "55555", "666666", "7777777"}, env: []string{"Z=", "x=", "yy="}},
		{name: "long", argv: []string{"a", big(10000)}, env: []string{big(5000), "B=2"}},
		{name: "many", argv: bigs(300, 3), env: bigs(101, 7)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path
			if path == "" {
				path = dump
			}
			args := append([]string{"-r", path}, tc.argv...)
			out, errno := launch(t, launcher, dir, tc.env, args...)
			if errno != 0 {
				t.Fatalf("exec: %v", errno)
			}
			nl := bytes.IndexByte(out, '\n')
			var sp, top uint64
			if _, err := fmt.Sscanf(string(out[:nl]), "%x %x", &sp, &top); err != nil {
				t.Fatalf("header %q: %v", out[:nl], err)
			}
			mem := out[nl+1:]
			if top != 0x7ffffffff000 || uint64(len(mem)) != top-sp {
				t.Fatalf("native stack [%#x, %#x) with %d bytes; ASLR not off?", sp, top, len(mem))
			}
			nat, err := decode(mem, sp, 8)
			if err != nil {
				t.Fatalf("decoding the native stack: %v", err)
			}

			a, err := NewArgs(tc.argv, tc.env, path, 8<<20)
			if err != nil {
				t.Fatal(err)
			}
			// The program-specific values come from the native aux vector;
			// their order and the host values must match Auxv64's.
			info := &AuxInfo{}
			for _, e := range nat.auxv {
				v := e.Value
				switch e.Type {
				case AT_SYSINFO_EHDR:
					info.SysinfoEHDR = v
				case AT_PHDR:
					info.Phdr = v
				case AT_PHENT:
					info.Phent = v
				case AT_PHNUM:
					info.Phnum = v
				case AT_BASE:
					info.Base = v
				case AT_FLAGS:
					info.Flags = v
				case AT_ENTRY:
					info.Entry = v
				case AT_UID:
					info.UID = uint32(v)
				case AT_EUID:
					info.EUID = uint32(v)
				case AT_GID:
					info.GID = uint32(v)
				case AT_EGID:
					info.EGID = uint32(v)
				case AT_SECURE:
					info.Secure = v != 0
				}
			}
			img := &Image{Top: vm.Addr(top), Args: a, Auxv: Auxv64(host, info)}
			rnd, _ := auxValue(nat.auxv, AT_RANDOM)
			copy(img.Random[:], mem[rnd-sp:])
			l, err := Build(img)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(l.Auxv, nat.auxv) {
				t.Errorf("aux vector:\n got %v\nwant %v", l.Auxv, nat.auxv)
			}
			if uint64(l.SP) != sp {
				t.Errorf("SP = %v, native %#x", l.SP, sp)
			}
			if !slices.Equal(nat.argv, a.Argv) || !slices.Equal(nat.envp, a.Envp) {
				t.Errorf("native argv %q envp %q, want %q %q", nat.argv, nat.envp, a.Argv, a.Envp)
			}
			if len(nat.argvPtr) > 0 && nat.argvPtr[0] != uint64(l.ArgStart) {
				t.Errorf("native argv[0] at %#x, ArgStart %v", nat.argvPtr[0], l.ArgStart)
			}
			if !bytes.Equal(l.Bytes, mem) {
				t.Errorf("stack bytes differ from the native stack at offset %d", diffAt(l.Bytes, mem))
			}
		})
	}
}

func diffAt(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestHostFromProc compares HostFromProc with what ld.so shows a fresh
// process (LD_SHOW_AUXV) and with this process's maps.
func TestHostFromProc(t *testing.T) {
	h, err := HostFromProc()
	if err != nil {
		t.Fatal(err)
	}
	h2, _ := HostFromProc()
	h2.HWCap++
	if h3, _ := HostFromProc(); h3.HWCap != h.HWCap {
		t.Errorf("HostFromProc returned its cache for changing")
	}
	if h.ClkTck != 100 {
		t.Errorf("ClkTck %d", h.ClkTck)
	}
	if h.SysinfoEHDR != 0 && (h.VDSOLen == 0 || h.VDSOLen%vm.PageSize != 0 || h.VvarLen%vm.PageSize != 0) {
		t.Errorf("vdso geometry vvar %#x vdso %#x", h.VvarLen, h.VDSOLen)
	}
	tru, err := exec.LookPath("true")
	if err != nil {
		t.Skip(err)
	}
	cmd := exec.Command(tru)
	cmd.Env = []string{"LD_SHOW_AUXV=1"}
	out, err := cmd.Output()
	if err != nil || len(out) == 0 {
		t.Skipf("LD_SHOW_AUXV: %v", err)
	}
	shown := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok {
			shown[k] = strings.TrimSpace(v)
		}
	}
	hex := func(s string) uint64 {
		n, _ := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 64)
		return n
	}
	if v, ok := shown["AT_HWCAP"]; ok && hex(v) != h.HWCap {
		t.Errorf("AT_HWCAP %s, HostFromProc %#x", v, h.HWCap)
	}
	if v, ok := shown["AT_HWCAP2"]; ok && hex(v) != h.HWCap2 {
		t.Errorf("AT_HWCAP2 %s, HostFromProc %#x", v, h.HWCap2)
	}
	if v, ok := shown["AT_MINSIGSTKSZ"]; ok && v != fmt.Sprint(h.MinSigStkSz) {
		t.Errorf("AT_MINSIGSTKSZ %s, HostFromProc %d", v, h.MinSigStkSz)
	}
}

func TestVdsoGeometry(t *testing.T) {
	for _, tc := range []struct {
		name       string
		maps       string
		vvar, vdso uint64
	}{
		{name: "6.18", maps: `7fee33c21000-7fee33c25000 r--p 00000000 00:00 0                          [vvar]
7fee33c25000-7fee33c27000 r--p 00000000 00:00 0                          [vvar_vclock]
7fee33c27000-7fee33c29000 r-xp 00000000 00:00 0                          [vdso]
7ffee3bcb000-7ffee3bec000 rw-p 00000000 00:00 0                          [stack]
`, vvar: 0x6000, vdso: 0x2000},
		{name: "old", maps: `7ffd1c9f1000-7ffd1c9f5000 r--p 00000000 00:00 0                          [vvar]
7ffd1c9f5000-7ffd1c9f7000 r-xp 00000000 00:00 0                          [vdso]
`, vvar: 0x4000, vdso: 0x2000},
		{name: "no vvar", maps: "7ffd1c9f5000-7ffd1c9f7000 r-xp 00000000 00:00 0                          [vdso]\n", vdso: 0x2000},
		{name: "none", maps: "00400000-00401000 r-xp 00000000 fe:00 1 /bin/x\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vv, vd, _, err := vdsoGeometry(strings.NewReader(tc.maps))
			if err != nil || vv != tc.vvar || vd != tc.vdso {
				t.Errorf("got %#x %#x %v, want %#x %#x", vv, vd, err, tc.vvar, tc.vdso)
			}
		})
	}
}

func TestParseAuxv(t *testing.T) {
	b, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		t.Skip(err)
	}
	v, err := ParseAuxv(b)
	if err != nil || len(v) == 0 {
		t.Fatalf("%v %v", v, err)
	}
	if _, err := ParseAuxv(b[:16]); err == nil && v[0].Type != AT_NULL {
		t.Errorf("truncated aux vector accepted")
	}
}
