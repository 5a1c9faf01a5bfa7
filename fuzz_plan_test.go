package uexec_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/uexec/uexec"
	"github.com/uexec/uexec/internal/testelf"
)

// FuzzPlanELF plans the exec of arbitrary files with the native switch
// (ELF64 and ELF32, PT_INTERP naming any file of the machine, #! lines):
// never a panic, never more than 5 s. It is seeded from TestDiffFuzz's
// fixtures; testdata/fuzz/FuzzPlanELF holds mutants TestDiffFuzz made.
func FuzzPlanELF(f *testing.F) {
	for _, tf := range []*testelf.File{testelf.Static64(), testelf.PIE64(""), testelf.PIE64(systemLD), static32(),
		func() *testelf.File { g := testelf.Static64(); g.Interp = systemLD; g.GarbageSections = true; return g }()} {
		f.Add(tf.Bytes())
	}
	f.Add([]byte("#!/bin/sh -e\necho x\n"))
	f.Add([]byte("#! /usr/bin/env -S sh -e\n"))
	sw := uexec.NewSwitch()
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, "f")
		os.Remove(path)
		if err := writeExec(path, b); err != nil {
			t.Fatal(err)
		}
		req, err := uexec.SelfRequest(path, []string{"prog"}, []string{"A=1"})
		if err != nil {
			t.Fatal(err)
		}
		req.NoRandom = true
		done := make(chan struct{})
		go func() {
			defer close(done)
			if p, err := sw.Execve(req); err == nil {
				p.Close()
			}
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("the plan of %d bytes took more than 5 s", len(b))
		}
	})
}
