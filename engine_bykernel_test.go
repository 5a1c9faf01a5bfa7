package uexec_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/uexec/uexec"
	"github.com/uexec/uexec/internal/testenv"
)

// pfSuperpriv is the task flag of a process that used a capability
// (include/linux/sched.h), field 9 of /proc/PID/stat.
const pfSuperpriv = 0x100

// TestSpawnByKernel: SpawnRequest.ByKernel has the kernel make an exec
// whose plan is its own, as root too: the program's /proc/self/stat flags
// are then native (no PF_SUPERPRIV) and Process.Kernel says why; without
// it root's stub builds the image (the flag set, Kernel empty). With a
// signal mask to set up first the stub sets it and execs the program (the
// kernel's exec still); an exec through an emulation root, which the
// kernel could not make, is the stub's with it too.
func TestSpawnByKernel(t *testing.T) {
	testenv.NeedRoot(t)
	const cat = "/bin/cat"
	out, err := exec.Command(cat, "/proc/self/stat").Output()
	if err != nil {
		t.Fatal(err)
	}
	native := statFlags(t, string(out))
	root := t.TempDir()
	const emulName = "/bin/uexec-bykernel-cat"
	b, err := os.ReadFile(cat)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, emulName), b, 0o755); err != nil {
		t.Fatal(err)
	}
	mask := uint64(1) << (10 - 1) // SIGUSR1
	e := uexec.NewEngine()
	for _, c := range []struct {
		name, path, emulRoot string
		byKernel, stub       bool
		mask                 *uint64
	}{
		{"stub", cat, "", false, true, nil},
		{"by kernel", cat, "", true, false, nil},
		{"by kernel, signal mask", cat, "", true, false, &mask},
		{"by kernel, emulation root", emulName, root, true, true, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			p, err := e.Spawn(ctx, &uexec.SpawnRequest{Path: c.path, Argv: []string{c.path, "/proc/self/stat", "/proc/self/status"},
				Files: []*os.File{nil, w, os.Stderr}, EmulRoot: c.emulRoot, ByKernel: c.byKernel, SigMask: c.mask})
			w.Close()
			if err != nil {
				t.Fatal(err)
			}
			out, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if st, err := p.Wait(); err != nil || !st.Success() {
				t.Fatalf("%v %v", st, err)
			}
			want := native
			if c.stub {
				want |= pfSuperpriv // README, Differences: PF_SUPERPRIV
			}
			stat, status, _ := strings.Cut(string(out), "\n")
			if got := statFlags(t, stat); got != want {
				t.Errorf("flags %#x, want %#x (natively %#x)", got, want, native)
			}
			if c.mask != nil && !strings.Contains(status, fmt.Sprintf("\nSigBlk:\t%016x\n", *c.mask)) {
				t.Errorf("the mask %#x was not set:\n%s", *c.mask, status)
			}
			if c.stub != (p.Kernel == "") || !c.stub && !strings.Contains(p.Kernel, "SpawnRequest.ByKernel") {
				t.Errorf("Process.Kernel %q: the stub built it %v", p.Kernel, c.stub)
			}
		})
	}
}

// statFlags is the flags field of a /proc/PID/stat line.
func statFlags(t *testing.T, stat string) uint64 {
	t.Helper()
	f := strings.Fields(stat[strings.LastIndexByte(stat, ')')+1:])
	if len(f) < 7 {
		t.Fatalf("/proc/PID/stat: %q", stat)
	}
	n, err := strconv.ParseUint(f[6], 10, 64)
	if err != nil {
		t.Fatalf("/proc/PID/stat flags %q: %v", f[6], err)
	}
	return n
}

// TestExecInPlaceByKernel: Engine.ExecInPlace with ByKernel has the kernel
// exec the program in place (the pid stays; no PF_SUPERPRIV; BeforeExec
// says why), where without it root's stub builds the image in place.
func TestExecInPlaceByKernel(t *testing.T) {
	testenv.NeedRoot(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("/bin/cat", "/proc/self/stat").Output()
	if err != nil {
		t.Fatal(err)
	}
	native := statFlags(t, string(out))
	for _, byKernel := range []bool{false, true} {
		cmd := exec.Command(self)
		cmd.Env = []string{"UEXEC_TEST_EXEC_IN_PLACE=/bin/cat /proc/self/stat"}
		if byKernel {
			cmd.Env = append(cmd.Env, "UEXEC_TEST_BY_KERNEL=1")
		}
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		timer := time.AfterFunc(time.Minute, func() { cmd.Process.Kill() })
		err := cmd.Run()
		timer.Stop()
		if err != nil {
			t.Fatalf("ByKernel %v: %v\n%s", byKernel, err, stderr.String())
		}
		want, kernel := native|pfSuperpriv, `kernel: ""`
		if byKernel {
			want, kernel = native, "SpawnRequest.ByKernel"
		}
		if got := statFlags(t, stdout.String()); got != want {
			t.Errorf("ByKernel %v: flags %#x, want %#x (natively %#x)", byKernel, got, want, native)
		}
		if pid := strings.Fields(stdout.String())[0]; pid != strconv.Itoa(cmd.Process.Pid) {
			t.Errorf("ByKernel %v: the program's pid %s, not its caller's %d", byKernel, pid, cmd.Process.Pid)
		}
		if !strings.Contains(stderr.String(), kernel) {
			t.Errorf("ByKernel %v: BeforeExec said %q, want %q", byKernel, stderr.String(), kernel)
		}
	}
}
