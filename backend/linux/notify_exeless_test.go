//go:build linux && amd64

package linux

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestFirstSyscall: the stub's system call instruction execFromStub uses
// is the first `syscall` of the stub's listing, where an instruction
// starts (not two bytes inside another's immediate).
func TestFirstSyscall(t *testing.T) {
	lst, err := os.ReadFile("../../internal/planstub/stub.lst")
	if err != nil {
		t.Fatal(err)
	}
	var want uint64
	for _, l := range strings.Split(string(lst), "\n") {
		addr, insn, ok := strings.Cut(l, ":")
		if ok && strings.TrimSpace(insn) == "syscall" {
			if want, err = strconv.ParseUint(strings.TrimSpace(addr), 16, 64); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	if got := firstSyscall(planStub.elf()); got == 0 || got != want {
		t.Errorf("firstSyscall %#x, the listing's first syscall %#x", got, want)
	}
	if firstSyscall([]byte("not an ELF")) != 0 {
		t.Error("firstSyscall of garbage")
	}
}
