package elf

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/uexec/uexec/execsw"
	"github.com/uexec/uexec/vm"
)

// runNative starts path without ASLR (setarch -R), waits until the kernel
// has loaded it and it sits in pause(2) (or, for a real program, until it
// exits having printed its maps), and returns its /proc/PID/maps.
func runNative(t *testing.T, path string) []mapping {
	t.Helper()
	setarch, err := exec.LookPath("setarch")
	if err != nil {
		t.Skip("setarch not found")
	}
	cmd := exec.Command(setarch, "-R", path)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	mapsPath := "/proc/" + itoa(cmd.Process.Pid) + "/maps"
	real, _ := filepath.EvalSymlinks(path)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		// Sleeping first, then the maps: a reader of the maps during the
		// exec can see the new image half built.
		if st, err := os.ReadFile("/proc/" + itoa(cmd.Process.Pid) + "/stat"); err == nil && strings.Contains(string(st), ") S ") {
			b, err := os.ReadFile(mapsPath)
			if err == nil && strings.Contains(string(b), real) {
				return parseMaps(t, string(b))
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s did not reach pause(2)", path)
	return nil
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// imageMaps drops what the ELF handler does not map: stack, vdso, vvar,
// vsyscall (the heap is empty at exec).
func imageMaps(ms []mapping) []mapping {
	var out []mapping
	for _, m := range ms {
		if strings.HasPrefix(m.Path, "[") {
			continue
		}
		out = append(out, m)
	}
	return out
}

func diffMaps(t *testing.T, got, want []mapping) {
	t.Helper()
	var g, w []string
	for _, m := range got {
		g = append(g, m.String())
	}
	for _, m := range want {
		w = append(w, m.String())
	}
	if strings.Join(g, "\n") != strings.Join(w, "\n") {
		t.Errorf("planned image differs from the kernel's\nplanned:\n%s\nkernel:\n%s", strings.Join(g, "\n"), strings.Join(w, "\n"))
	}
}

// TestNativeFixtures runs testelf programs natively and compares the
// kernel's mappings, protections and file offsets included, with the plan.
func TestNativeFixtures(t *testing.T) {
	if testing.Short() {
		t.Skip("runs programs natively")
	}
	tests := []struct {
		name   string
		build  func(t *testing.T) (prog string)
		interp bool
	}{
		{name: "ET_EXEC with bss", build: func(t *testing.T) string { return exec64().Write(t, "exec") }},
		{name: "ET_EXEC read-only bss and hole", build: func(t *testing.T) string {
			f := exec64()
			// A read-only segment whose memsz exceeds filesz, after a
			// hole: the kernel cannot clear its tail and maps its
			// bss pages read-write.
			f.Progs = append(f.Progs, progRO(0x1800, 0x408800, 0x100, 0x3000))
			f.Size = 0x2000
			return f.Write(t, "exec-ro")
		}},
		{name: "ET_DYN loader", build: func(t *testing.T) string { return loader64().Write(t, "loader") }},
		{name: "ET_DYN loader with 2 MiB alignment", build: func(t *testing.T) string {
			f := loader64()
			for i := range f.Progs {
				if f.Progs[i].Align == 0x1000 {
					f.Progs[i].Align = 0x200000
				}
			}
			return f.Write(t, "loader-2m")
		}},
		{name: "PIE with interpreter", interp: true, build: func(t *testing.T) string {
			ld := loader64().Write(t, "ld.so")
			return pie64(ld).Write(t, "pie")
		}},
		{name: "ET_EXEC with interpreter", interp: true, build: func(t *testing.T) string {
			ld := loader64().Write(t, "ld.so")
			f := exec64()
			f.Interp = ld
			f.Progs[0].Filesz, f.Progs[0].Memsz = 0x300, 0x300
			return f.Write(t, "exec-interp")
		}},
		{name: "out of order overlapping PT_LOADs", build: func(t *testing.T) string {
			f := loader64()
			p := f.Progs
			f.Progs = append([]testelfProg{p[2], p[0], p[1], p[3]}, progRO(0x800, 0x800, 0x100, 0x100))
			return f.Write(t, "ooo")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.build(t)
			kernel := imageMaps(runNative(t, path))
			epp := newPkg(t, path, space64())
			if err := (Format{}).makeCmds(epp, fsOpener(t)); err != nil {
				t.Fatal(err)
			}
			planned := simulate(t, epp.Cmds)
			diffMaps(t, planned, kernel)
			if t.Failed() {
				for _, c := range epp.Cmds {
					t.Log(c)
				}
			}
			checkFlags(t, epp)
		})
	}
}

// checkFlags: a relocatable image starts with FlagBase and continues with
// FlagRelative; fixed images have FlagFixed throughout.
func checkFlags(t *testing.T, epp *execsw.Package) {
	t.Helper()
	for i, c := range epp.Cmds {
		if c.Flags&(vm.FlagFixed|vm.FlagRelative|vm.FlagBase) == 0 {
			t.Errorf("command %d %v has no placement flag", i, c)
		}
		if c.Flags&vm.FlagRelative != 0 && i == 0 {
			t.Errorf("first command %v is relative", c)
		}
	}
}
