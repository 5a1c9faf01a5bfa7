package execsw

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/vm"
)

// TestSysinfoCommit: under vm.overcommit_memory 0 the machine's commit limit
// comes from sysinfo(2); it must be /proc/meminfo's MemTotal plus SwapTotal
// in pages, what the kernel's __vm_enough_memory compares with.
func TestSysinfoCommit(t *testing.T) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Skip(err)
	}
	kb := map[string]uint64{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		if f := strings.Fields(v); len(f) > 0 {
			kb[k], _ = strconv.ParseUint(f[0], 10, 64)
		}
	}
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		t.Fatal(err)
	}
	got := (si.Totalram + si.Totalswap) * uint64(max(si.Unit, 1)) / vm.PageSize
	if want := (kb["MemTotal"] + kb["SwapTotal"]) / (vm.PageSize >> 10); got != want {
		t.Errorf("sysinfo gives %d pages, /proc/meminfo %d", got, want)
	}
	if mode, ok := procUint("/proc/sys/vm/overcommit_memory"); ok && mode == 0 {
		if m := MachineFromProc(); m.CommitPages != got {
			t.Errorf("MachineFromProc().CommitPages = %d, want %d", m.CommitPages, got)
		}
	}
}
