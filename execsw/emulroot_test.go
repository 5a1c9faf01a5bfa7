package execsw

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/internal/testenv"
)

// TestEmulRootLookup checks the TRYEMULROOT rules of lookup: which root
// each name resolves in, when the real root is tried again, and when the
// plan is marked as not the kernel's own exec.
func TestEmulRootLookup(t *testing.T) {
	top := testenv.SharedTempDir(t) // uid 65534 searches it
	emul := filepath.Join(top, "emul")
	under := func(p string) string { return filepath.Join(emul, p) } // the emulation root's copy of host path p
	mkdir := func(p string, mode os.FileMode) {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	prog := func(p string) string {
		mkdir(filepath.Dir(p), 0o755)
		return testFile(t, filepath.Dir(p), filepath.Base(p), "MAGIC...", 0o755)
	}
	link := func(target, p string) {
		mkdir(filepath.Dir(p), 0o755)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	real := prog(filepath.Join(top, "real/prog"))
	both := prog(filepath.Join(top, "both/prog"))
	bothEmul := prog(under(both))
	onlyEmul := prog(under("/onlyemul/prog"))
	outside := prog(filepath.Join(top, "outside"))
	mkdir(under("/a"), 0o755)
	link("/onlyemul/prog", under("/bin/abs"))
	link("/.."+real, under("/bin/up"))
	link("/bin/abs", under("/bin/abs2"))
	// In the emulation root, the directory of real's copy is a file.
	testFile(t, under(top), "real", "not a directory", 0o644)
	loopReal := prog(filepath.Join(top, "both/loop"))
	link("loop", under(loopReal))
	dirReal := prog(filepath.Join(top, "both/dir"))
	mkdir(under(dirReal), 0o755)
	closedReal := prog(filepath.Join(top, "closed/prog"))
	prog(under(closedReal))
	mkdir(filepath.Dir(under(closedReal)), 0o700)
	cwd := filepath.Join(top, "cwd")
	relReal := prog(filepath.Join(cwd, "rel/prog"))
	prog(under(relReal))
	prog(under("/rel/prog"))

	user := Cred{UID: 65534, EUID: 65534, FSUID: 65534, GID: 65534, EGID: 65534, FSGID: 65534}
	for _, tc := range []struct {
		name     string
		path     string
		cred     Cred
		want     error
		resolved string // host path of the file opened
		extended bool   // the plan is not the kernel's own exec
	}{
		{"only in the real root", real, rootCred(), nil, real, false},
		{"only under the root", "/onlyemul/prog", rootCred(), nil, onlyEmul, true},
		{"in both: the emulation root wins", both, rootCred(), nil, bothEmul, true},
		{"dot dot at the top leaves the root", "/a/../../outside", rootCred(), nil, outside, true},
		{"absolute symlink restarts at the root", "/bin/abs", rootCred(), nil, onlyEmul, true},
		{"absolute symlinks chained", "/bin/abs2", rootCred(), nil, onlyEmul, true},
		{"symlink starting /../ goes to the real root", "/bin/up", rootCred(), nil, real, true},
		{"/../ prefix: the real root", "/.." + both, rootCred(), nil, both, false},
		{"relative: from the cwd, no emulation root", "rel/prog", rootCred(), nil, relReal, false},
		{"in neither: ENOENT", "/nowhere/prog", rootCred(), unix.ENOENT, "", false},
		{"ENOTDIR under the root: retried", real, rootCred(), nil, real, false},
		{"EACCES under the root: retried", closedReal, user, nil, closedReal, false},
		{"ELOOP under the root: not retried", loopReal, rootCred(), unix.ELOOP, "", false},
		{"a directory under the root: not retried", dirReal, rootCred(), unix.EACCES, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			epp := &Package{Sw: &Switch{}, Path: tc.path, Req: &Request{Path: tc.path, Dir: cwd, Cred: tc.cred, EmulRoot: emul}}
			defer epp.close()
			err := epp.openExec()
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("openExec(%s): %v, want %v", tc.path, err, tc.want)
			}
			if err != nil {
				var ee *ExecError
				if !errors.As(err, &ee) {
					t.Errorf("error %v is not an *ExecError", err)
				}
				return
			}
			if epp.Resolved != tc.resolved {
				t.Errorf("resolved to %s, want %s", epp.Resolved, tc.resolved)
			}
			if got := epp.File.Name(); got != tc.resolved {
				t.Errorf("file name %s, want %s", got, tc.resolved)
			}
			if (epp.Extended != "") != tc.extended {
				t.Errorf("Extended %q, want extended=%v", epp.Extended, tc.extended)
			}
		})
	}
}

// TestEmulRootPlanLinks checks that the chain names the host file of a
// name found under the emulation root, and that the plan carries the root.
func TestEmulRootPlanLinks(t *testing.T) {
	top := t.TempDir()
	emul := filepath.Join(top, "emul")
	if err := os.MkdirAll(filepath.Join(emul, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	host := testFile(t, filepath.Join(emul, "bin"), "prog", "MAGIC...", 0o755)
	epp := &Package{Sw: &Switch{}, Path: "/bin/prog", Req: &Request{Path: "/bin/prog", Dir: top, Cred: rootCred(), EmulRoot: emul}}
	defer epp.close()
	if err := epp.openExec(); err != nil {
		t.Fatal(err)
	}
	epp.Chain = []Link{{Format: "m", Path: "/bin/prog"}, {Format: "interp", Path: "/lib/other"}}
	p := &Plan{Chain: epp.Chain, Extended: epp.Extended}
	epp.emulPlan(p)
	if p.EmulRoot != emul || p.Extended == "" {
		t.Errorf("plan EmulRoot %q Extended %q, want %q and a reason", p.EmulRoot, p.Extended, emul)
	}
	if p.Chain[0].Host != host || p.Chain[1].Host != "" {
		t.Errorf("chain %+v, want the first link's host %s and none on the second", p.Chain, host)
	}
}
