//go:build linux && amd64

package linux

import (
	"testing"

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
