//go:build linux && amd64

package linux

import (
	"errors"
	"os"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/execsw"
)

// TestStubCred: the stub opens the plan's files with the credentials its
// exec leaves, not the caller's: a caller that dropped its ids but kept
// its capabilities (setpriv --reuid) has none of them in the stub, and a
// filesystem id set apart (setfsuid) is the effective one again.
func TestStubCred(t *testing.T) {
	all := uint64(1)<<41 - 1
	dac := uint64(1)<<unix.CAP_DAC_OVERRIDE | 1<<unix.CAP_DAC_READ_SEARCH
	for _, tc := range []struct {
		name             string
		euid, fsuid      uint32
		eff, bnd, amb    uint64
		override, search bool
		wantFSUID        uint32
	}{
		{"root", 0, 0, all, all, 0, true, true, 0},
		{"root without effective capabilities", 0, 0, 0, all, 0, true, true, 0},
		{"ids dropped, capabilities kept", 65534, 65534, all, all, 0, false, false, 65534},
		{"ambient DAC capabilities", 1000, 1000, dac, all, dac, true, true, 1000},
		{"fsuid set apart", 1000, 0, 0, all, 0, false, false, 1000},
	} {
		c := &caller{cred: execsw.Cred{EUID: tc.euid, FSUID: tc.fsuid, CapDACOverride: tc.eff&dac != 0, CapDACReadSearch: tc.eff&dac != 0},
			capEff: tc.eff, capBnd: tc.bnd, capAmb: tc.amb}
		cr := c.stubCred()
		if cr.CapDACOverride != tc.override || cr.CapDACReadSearch != tc.search || cr.FSUID != tc.wantFSUID {
			t.Errorf("%s: stub's DAC_OVERRIDE %v, DAC_READ_SEARCH %v, fsuid %d; want %v, %v, %d", tc.name,
				cr.CapDACOverride, cr.CapDACReadSearch, cr.FSUID, tc.override, tc.search, tc.wantFSUID)
		}
	}
}

// TestReadCall reads a path, argv and envp from this process's memory as
// from a caller's: strings and pointers that cross a page boundary, a
// string that ends at the last byte before an unreadable page, an empty and
// a NULL vector, and the errors: EFAULT for a pointer array that runs into
// the unreadable page, ENAMETOOLONG for a path without its NUL in PATH_MAX.
func TestReadCall(t *testing.T) {
	const page = 4096
	mem, err := unix.Mmap(-1, 0, 5*page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	if err := unix.Mprotect(mem[4*page:], unix.PROT_NONE); err != nil { // the fifth page unreadable
		t.Fatal(err)
	}
	base := uint64(uintptr(unsafe.Pointer(&mem[0])))
	put := func(off int, s string) uint64 {
		copy(mem[off:], s+"\x00")
		return base + uint64(off)
	}
	putWord := func(off int, v uint64) {
		for i := range 8 {
			mem[off+i] = byte(v >> (8 * i))
		}
	}
	self := os.Getpid()
	path := put(page-3, "/bin/true") // across the first boundary
	a0 := put(100, "arg0")           // within a page
	a1 := put(4*page-5, "last")      // its NUL the last readable byte
	e0 := put(3*page-1, "K=V")       // from the last byte of a page
	argv := 2*page - 4               // the array across the second boundary
	putWord(argv, a0)
	putWord(argv+8, a1)
	putWord(argv+16, 0)
	envp := 1000
	putWord(envp, e0)
	putWord(envp+8, 0)
	empty := 2000
	putWord(empty, 0)
	gotPath, gotArgv, gotEnvp, argErr, err := readCall(self, path, base+uint64(argv), base+uint64(envp))
	if err != nil || argErr != nil || gotPath != "/bin/true" || strings.Join(gotArgv, ",") != "arg0,last" || strings.Join(gotEnvp, ",") != "K=V" {
		t.Errorf("readCall: %q %q %q, %v, %v", gotPath, gotArgv, gotEnvp, argErr, err)
	}
	if _, a, e, argErr, err := readCall(self, path, base+uint64(empty), 0); err != nil || argErr != nil || len(a) != 0 || e != nil {
		t.Errorf("empty argv, NULL envp: %q %q, %v, %v", a, e, argErr, err)
	}
	// An array whose terminating NULL would lie in the unreadable page.
	runaway := 4*page - 8
	putWord(runaway, a0)
	if _, _, _, argErr, _ := readCall(self, path, base+uint64(runaway), 0); !errors.Is(argErr, unix.EFAULT) {
		t.Errorf("argv into an unreadable page: %v, want EFAULT", argErr)
	}
	// No NUL within PATH_MAX, and a path of PATH_MAX-1 bytes.
	for i := range 2 * page {
		mem[i] = 'a'
	}
	mem[2*page-1] = 0
	if _, _, _, _, err := readCall(self, base, 0, 0); !errors.Is(err, unix.ENAMETOOLONG) {
		t.Errorf("a path of %d bytes: %v, want ENAMETOOLONG", 2*page-1, err)
	}
	if p, _, _, _, err := readCall(self, base+page, 0, 0); err != nil || len(p) != page-1 {
		t.Errorf("a path of %d bytes: %d bytes, %v", page-1, len(p), err)
	}
	if _, _, _, _, err := readCall(self, base+page-1, 0, 0); !errors.Is(err, unix.ENAMETOOLONG) {
		t.Errorf("a path of %d bytes: %v, want ENAMETOOLONG", page, err)
	}
}
