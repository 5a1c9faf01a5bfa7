package uexec_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uexec/uexec"
	backend "github.com/uexec/uexec/backend/linux"
	"github.com/uexec/uexec/internal/kernelexec"
	"github.com/uexec/uexec/internal/testenv"
)

// startUnderUexec plans and starts argv under uexec with stdout to a pipe;
// atEntry runs while the program is stopped at its first instruction. It
// returns the program's output and exit code.
func startUnderUexec(t *testing.T, path string, argv, envp []string, noRandom bool, atEntry func(pid int) error) (out string, code int) {
	t.Helper()
	req, err := uexec.SelfRequest(path, argv, envp)
	if err != nil {
		t.Fatal(err)
	}
	req.Dir, req.NoRandom = "/", noRandom
	plan, err := uexec.NewSwitch().Execve(req)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	defer plan.Close()
	// Every program here has bytes the stub enters it through that leave
	// the kernel's rflags (backend.EntryFlags): a static C program an
	// epilogue, ld.so and Go's runtime a `popfq; ret`.
	if f := backend.EntryFlags(plan); f != 0x202 {
		t.Errorf("%s: EntryFlags %#x, want 0x202", path, f)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	devnull, _ := os.Open(os.DevNull)
	defer devnull.Close()
	p, err := backend.Start(plan, &backend.Options{Files: []*os.File{devnull, w, os.Stderr}, Dir: "/", NoRandom: noRandom, AtEntry: atEntry})
	w.Close()
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	b, _ := io.ReadAll(r)
	st, err := p.Wait()
	if err != nil {
		t.Fatal(err)
	}
	return string(b), st.ExitCode()
}

type kernelCase struct {
	name string
	path string
	argv []string
}

func kernelCases(t *testing.T) []kernelCase {
	cases := []kernelCase{
		{"true", "/bin/true", []string{"true"}},
		{"ls", "/bin/ls", []string{"ls", "/"}},
	}
	for _, m := range kernelexec.ProbeModes {
		p, err := kernelexec.BuildProbe(m)
		if err != nil {
			testenv.Need(t, false, "building the probe: %v", err)
		}
		cases = append(cases, kernelCase{"probe " + string(m), p, []string{"probe", "one", "two words"}})
	}
	gosrc := filepath.Join(t.TempDir(), "hello.go")
	os.WriteFile(gosrc, []byte("package main\nfunc main(){}\n"), 0o644)
	cases = append(cases, kernelCase{"go", testenv.BuildGo(t, gosrc), []string{"hello"}})
	return cases
}

// TestStartMatchesKernelAtEntry stops a program built by uexec at its first
// instruction and compares everything there with the kernel's exec of the
// same program: registers, FPU control words, rseq, maps, auxv, the stack,
// /proc/PID/stat, comm, cmdline, environ, status, limits, exe, cwd. Without
// ASLR every address must be equal; with ASLR addresses are compared as
// object+offset.
func TestStartMatchesKernelAtEntry(t *testing.T) {
	testenv.NeedRoot(t)
	envp := []string{"HOME=/root", "PATH=/usr/bin:/bin", "LANG=C"}
	for _, c := range kernelCases(t) {
		for _, noRandom := range []bool{true, false} {
			name := c.name + "/aslr"
			if noRandom {
				name = c.name + "/no-aslr"
			}
			t.Run(name, func(t *testing.T) {
				native, err := kernelexec.Snapshot(context.Background(), kernelexec.Options{
					Path: c.path, Argv: c.argv, Envp: envp, Dir: "/", NoRandom: noRandom, Files: []uintptr{0, 1, 2}})
				if err != nil {
					t.Fatal(err)
				}
				var under *kernelexec.Snap
				startUnderUexec(t, c.path, c.argv, envp, noRandom, func(pid int) error {
					s, err := kernelexec.SnapshotPid(pid)
					under = s
					return err
				})
				if under == nil {
					t.Fatal("no snapshot at entry")
				}
				// Descriptors differ by construction of the test (the
				// native program inherits the test's, ours a pipe).
				// orig_rax is the tracer's view of the exec syscall the
				// native snapshot stops in; the program never sees it.
				// SigQ counts the signals queued for the whole user.
				for _, d := range kernelexec.Compare(native, under, kernelexec.CompareOptions{
					AllowRandom: true, AllowASLR: !noRandom, Ignore: []string{"fds", "pid", "regs.orig_rax", "status.SigQ"}}) {
					t.Error(d)
				}
			})
		}
	}
}

// TestProbeMatchesKernel runs the probe natively and under uexec and
// compares everything it reports: argv, envp, auxv, /proc/self files, stat
// fields, credentials, signals, rseq, the vDSO, brk and malloc.
func TestProbeMatchesKernel(t *testing.T) {
	testenv.NeedRoot(t)
	envp := []string{"HOME=/root", "PATH=/usr/bin:/bin", "LANG=C", "PROBE=1"}
	for _, m := range kernelexec.ProbeModes {
		path, err := kernelexec.BuildProbe(m)
		if err != nil {
			testenv.Need(t, false, "building the probe: %v", err)
		}
		argv := []string{"probe", "a", "b c"}
		for _, noRandom := range []bool{true, false} {
			name := string(m) + "/aslr"
			if noRandom {
				name = string(m) + "/no-aslr"
			}
			t.Run(name, func(t *testing.T) {
				native, err := kernelexec.RunProbe(context.Background(), kernelexec.Options{
					Path: path, Argv: argv, Envp: envp, Dir: "/", NoRandom: noRandom})
				if err != nil {
					t.Fatal(err)
				}
				out, code := startUnderUexec(t, path, argv, envp, noRandom, nil)
				if code != 0 {
					t.Fatalf("probe under uexec exited %d: %s", code, out)
				}
				under, err := kernelexec.ParseProbe([]byte(out))
				if err != nil {
					t.Fatalf("probe output under uexec: %v\n%s", err, out)
				}
				// rflags at the first instruction (a static probe's
				// are the stub's: backend.EntryFlags), with ASLR too;
				// ld.so's at the program's, which then depend on the
				// addresses it computed with.
				ignore := append([]string{"entry.rflags"}, kernelexec.ProbeVolatile...)
				fromKernel := native.Get("entry.from") == "kernel"
				if v, n := under.Get("entry.rflags"), native.Get("entry.rflags"); v != n && (noRandom || fromKernel) {
					t.Errorf("entry.rflags = %s under uexec, %s natively", v, n)
				}
				if !noRandom {
					// Addresses are random; their relations are checked
					// by the probe itself (rsp alignment, auxv on the
					// stack equal to /proc/self/auxv, malloc in brk).
					ignore = append(ignore, "entry.*", "auxv.stack*", "auxv.proc*", "stat.*", "maps.*",
						"brk.at_main", "brk.after_malloc", "at_random.*", "rseq.libc_offset")
				}
				for _, d := range kernelexec.DiffProbe(native, under, ignore...) {
					t.Error(d)
				}
				for _, key := range []string{"auxv.proc_matches_stack", "malloc.64.in_brk"} {
					if v := under.Get(key); v != "yes" {
						t.Errorf("%s=%s under uexec", key, v)
					}
				}
				if v := under.Get("entry.rsp_mod16"); v != "0" {
					t.Errorf("rsp %% 16 = %s at entry under uexec", v)
				}
				if strings.Contains(out, "=FAIL") {
					t.Errorf("the probe reports a failure under uexec:\n%s", out)
				}
			})
		}
	}
}
