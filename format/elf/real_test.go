package elf

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uexec/uexec/vm"
)

// filePages maps each page of path's file mappings to its file offset.
func filePages(ms []mapping, path string) map[uint64]uint64 {
	out := map[uint64]uint64{}
	for _, m := range ms {
		if m.Path != path {
			continue
		}
		for a := m.Start; a < m.End; a += vm.PageSize {
			out[a] = m.Off + a - m.Start
		}
	}
	return out
}

// TestGroundTruthLs plans /bin/ls without ASLR and compares where its
// pages and ld.so's land with what the kernel did for a real program
// (setarch -R cat /proc/self/maps): the same addresses and file offsets
// (protections differ after ld.so's RELRO mprotect, so they are not
// compared).
func TestGroundTruthLs(t *testing.T) {
	const ls = "/bin/ls"
	if _, err := os.Stat(ls); err != nil {
		t.Skip(err)
	}
	epp := newPkg(t, ls, space64())
	if err := (Format{}).makeCmds(epp, fsOpener(t)); err != nil {
		t.Fatal(err)
	}
	if got := uint64(epp.Cmds[0].Addr); got != 0x555555554000 {
		t.Errorf("program at %#x, want 0x555555554000", got)
	}
	if got := epp.ELF.InterpBase; got != 0x7ffff7fca000 {
		t.Errorf("ld.so at %v, want 0x7ffff7fca000", got)
	}
	planned := simulate(t, epp.Cmds)
	if last := planned[len(planned)-1]; last.End != 0x7ffff7fff000 {
		t.Errorf("ld.so ends at %#x, want 0x7ffff7fff000", last.End)
	}

	setarch, err := exec.LookPath("setarch")
	if testing.Short() || err != nil {
		t.Skip("not comparing with a native run")
	}
	// ls cannot print its own maps: cat (a PIE with the same
	// interpreter) can. Plan cat the same way and compare page by page.
	cat, err := exec.LookPath("cat")
	if err != nil {
		t.Skip(err)
	}
	out, err := exec.Command(setarch, "-R", cat, "/proc/self/maps").Output()
	if err != nil {
		t.Fatal(err)
	}
	kernel := parseMaps(t, string(out))
	catReal, _ := filepath.EvalSymlinks(cat)
	catPkg := newPkg(t, cat, space64())
	if err := (Format{}).makeCmds(catPkg, fsOpener(t)); err != nil {
		t.Fatal(err)
	}
	catPlanned := simulate(t, catPkg.Cmds)
	interp, _ := filepath.EvalSymlinks(catPkg.ELF.Interp)
	for _, path := range []string{catReal, interp} {
		got, want := filePages(catPlanned, path), filePages(kernel, path)
		if len(want) == 0 {
			t.Fatalf("%s not in the native maps:\n%s", path, out)
		}
		for a, off := range want {
			if g, ok := got[a]; !ok || g != off {
				t.Errorf("%s: page %#x: kernel maps offset %#x, plan has %#x (mapped %v)", path, a, off, g, ok)
			}
		}
		for a := range got {
			if _, ok := want[a]; !ok {
				t.Errorf("%s: plan maps page %#x, the kernel does not", path, a)
			}
		}
	}
	// The kernel's [heap] starts at the planned brk.
	for _, m := range kernel {
		if m.Path == "[heap]" && m.Start != uint64(catPkg.ELF.StartBrk) {
			t.Errorf("[heap] at %#x, planned brk %v", m.Start, catPkg.ELF.StartBrk)
		}
	}
}

// TestRealBinaries plans the machine's programs and programs built here:
// a Go binary, a static and a static-pie C program.
func TestRealBinaries(t *testing.T) {
	type bin struct{ name, path string }
	var bins []bin
	for _, p := range []string{"/bin/ls", "/bin/sh", "/usr/bin/python3", "/usr/bin/env", "/lib64/ld-linux-x86-64.so.2"} {
		if _, err := os.Stat(p); err == nil {
			bins = append(bins, bin{p, p})
		}
	}
	dir := t.TempDir()
	if !testing.Short() {
		if gobin, err := exec.LookPath("go"); err == nil {
			src := filepath.Join(dir, "hello.go")
			os.WriteFile(src, []byte("package main\nfunc main() { println(\"hi\") }\n"), 0o644)
			out := filepath.Join(dir, "hello-go")
			cmd := exec.Command(gobin, "build", "-o", out, src)
			cmd.Env = append(os.Environ(), "GO111MODULE=off", "CGO_ENABLED=0", "GOFLAGS=") // not -race: a static program
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("go build: %v\n%s", err, b)
			} else {
				bins = append(bins, bin{"go static", out})
			}
		}
		if gcc, err := exec.LookPath("gcc"); err == nil {
			src := filepath.Join(dir, "hello.c")
			os.WriteFile(src, []byte("#include <stdio.h>\nint main(void) { puts(\"hi\"); return 0; }\n"), 0o644)
			for _, mode := range []string{"-static", "-static-pie"} {
				out := filepath.Join(dir, "hello"+mode)
				if b, err := exec.Command(gcc, mode, "-O1", "-o", out, src).CombinedOutput(); err != nil {
					t.Logf("gcc %s: %v\n%s", mode, err, b)
					continue
				}
				bins = append(bins, bin{"gcc " + mode, out})
			}
		}
	}
	for _, b := range bins {
		t.Run(b.name, func(t *testing.T) {
			epp := newPkg(t, b.path, space64())
			if err := (Format{}).makeCmds(epp, fsOpener(t)); err != nil {
				t.Fatal(err)
			}
			if len(epp.Cmds) == 0 {
				t.Fatal("no commands")
			}
			ms := simulate(t, epp.Cmds)
			for _, m := range ms {
				if m.Start < uint64(vm.MmapMinAddr) || m.End > uint64(vm.TaskSize64) {
					t.Errorf("mapping %v outside the user range", m)
				}
				if strings.HasPrefix(m.Prot, "---") {
					t.Errorf("reservation left unmapped-over: %v", m)
				}
			}
			e := epp.ELF
			if e.Entry == 0 || epp.Entry == 0 || e.Phdr == 0 || e.StartBrk == 0 {
				t.Errorf("implausible info %+v, entry %v", e, epp.Entry)
			}
			if e.StartCode > e.EndCode || e.EndCode > e.EndData {
				t.Errorf("code/data fields out of order: %+v", e)
			}
			checkFlags(t, epp)
			if testing.Verbose() {
				for _, c := range epp.Cmds {
					t.Log(c)
				}
				t.Logf("%+v", e)
			}
		})
	}
}

// TestStaticPieNative runs the static-pie natively without ASLR to check
// its placement and brk (moved to ELF_ET_DYN_BASE) against the kernel.
func TestStaticPieNative(t *testing.T) {
	if testing.Short() {
		t.Skip("runs programs natively")
	}
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip(err)
	}
	setarch, err := exec.LookPath("setarch")
	if err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "maps.c")
	os.WriteFile(src, []byte(`#include <stdio.h>
#include <stdlib.h>
int main(void) { free(malloc(16)); FILE *f = fopen("/proc/self/maps", "r"); int c; while ((c = fgetc(f)) != EOF) putchar(c); return 0; }
`), 0o644)
	out := filepath.Join(dir, "maps")
	if b, err := exec.Command(gcc, "-static-pie", "-O1", "-o", out, src).CombinedOutput(); err != nil {
		t.Skipf("gcc -static-pie: %v\n%s", err, b)
	}
	maps, err := exec.Command(setarch, "-R", out).Output()
	if err != nil {
		t.Fatal(err)
	}
	kernel := parseMaps(t, string(maps))
	epp := newPkg(t, out, space64())
	if err := (Format{}).makeCmds(epp, fsOpener(t)); err != nil {
		t.Fatal(err)
	}
	planned := simulate(t, epp.Cmds)
	real, _ := filepath.EvalSymlinks(out)
	got, want := filePages(planned, real), filePages(kernel, real)
	for a, off := range want {
		if g, ok := got[a]; !ok || g != off {
			t.Errorf("page %#x: kernel maps offset %#x, plan has %#x (mapped %v)\nkernel:\n%s", a, off, g, ok, maps)
		}
	}
	for _, m := range kernel {
		if m.Path == "[heap]" && m.Start != uint64(epp.ELF.StartBrk) {
			t.Errorf("[heap] at %#x, planned brk %v", m.Start, epp.ELF.StartBrk)
		}
	}
}
