package veriexec

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec"
	"github.com/uexec/uexec/execsw"
)

// planWith plans an exec of path with p as the switch's only policy.
func planWith(t *testing.T, p execsw.Policy, path string) error {
	t.Helper()
	sw := uexec.NewSwitch()
	sw.Policies = []execsw.Policy{p}
	req, err := uexec.SelfRequest(path, []string{path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := sw.Execve(req)
	if err == nil {
		if p, ok := p.(*Policy); ok && p.strict >= IDS && plan.Extended != execsw.PinnedFiles {
			t.Errorf("a verified plan is not pinned: Extended %q", plan.Extended)
		}
		plan.Close()
	}
	return err
}

func sumOf(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestStrict: what each strict level does with an exec (kern_veriexec.c
// veriexec_file_verify and the table of section 4 of the policies
// reference).
func TestStrict(t *testing.T) {
	dir, _ := filepath.EvalSymlinks(t.TempDir())
	b, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Skip(err)
	}
	for _, n := range []string{"listed", "modified", "indirect", "unlisted"} {
		os.WriteFile(filepath.Join(dir, n), b, 0o755)
	}
	ld, _ := filepath.EvalSymlinks("/lib64/ld-linux-x86-64.so.2")
	good := sumOf(t, dir+"/listed")
	sigs := filepath.Join(dir, "sigs")
	os.WriteFile(sigs, []byte(strings.Join([]string{
		dir + "/listed SHA256 " + good,
		dir + "/modified SHA256 " + strings.Repeat("00", 32),
		dir + "/indirect SHA256 " + good + " interpreter",
		ld + " SHA256 " + sumOf(t, ld) + " library",
	}, "\n")+"\n"), 0o644)
	tab, err := Load(sigs)
	if err != nil {
		t.Fatal(err)
	}
	// want: "" runs, else the start of the refusal's reason.
	tests := []struct {
		file string
		want [4]string
	}{
		{"listed", [4]string{"", "", "", ""}},
		{"modified", [4]string{"", "veriexec: fingerprint mismatch", "veriexec: fingerprint mismatch", "veriexec: fingerprint mismatch"}},
		{"indirect", [4]string{"", "", "veriexec: incorrect access type", "veriexec: incorrect access type"}},
		{"unlisted", [4]string{"", "", "veriexec: no fingerprint", "veriexec: no fingerprint"}},
	}
	for _, tc := range tests {
		for s := Learning; s <= Lockdown; s++ {
			var reports []string
			p := tab.Policy(s)
			p.Logf = func(f string, a ...any) { reports = append(reports, f) }
			err := planWith(t, p, filepath.Join(dir, tc.file))
			want := tc.want[s]
			var ee *execsw.ExecError
			switch {
			case want == "" && err != nil:
				t.Errorf("%s at %v: %v, want it to run", tc.file, s, err)
			case want != "" && (!errors.Is(err, unix.EPERM) || !errors.As(err, &ee) || !strings.HasPrefix(ee.Reason, want)):
				t.Errorf("%s at %v: %v, want EPERM: %s", tc.file, s, err, want)
			}
			// Below the refusing level, a mismatch or a wrong type is
			// reported.
			if reported := len(reports) > 0; want == "" && tc.file != "listed" && tc.file != "unlisted" && !reported {
				t.Errorf("%s at %v: not reported", tc.file, s)
			}
		}
	}
	// Strict 0 with no entries bypasses everything.
	empty, _ := Parse(strings.NewReader(""), "empty")
	if err := planWith(t, empty.Policy(Learning), dir+"/unlisted"); err != nil {
		t.Error(err)
	}
	// Unplanned execs: refused from IPS on.
	for s := Learning; s <= Lockdown; s++ {
		err := tab.Policy(s).Unplanned("/x", "32-bit")
		if (s >= IPS) != errors.Is(err, unix.EPERM) {
			t.Errorf("Unplanned at %v: %v", s, err)
		}
	}
}

// TestCache: a fingerprint is computed once per file version, again when
// the file changes, and at every use for an untrusted entry.
func TestCache(t *testing.T) {
	dir, _ := filepath.EvalSymlinks(t.TempDir())
	b, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Skip(err)
	}
	prog := filepath.Join(dir, "prog")
	os.WriteFile(prog, b, 0o755)
	for _, flags := range []string{"direct", "direct,untrusted"} {
		tab, err := Parse(strings.NewReader(prog+" SHA256 "+sumOf(t, prog)+" "+flags+"\n"), "sigs")
		if err != nil {
			t.Fatal(err)
		}
		p := tab.Policy(IDS)
		hashes := 0
		testAfterVerify = func(string) { hashes++ }
		for i := 0; i < 3; i++ {
			if err := planWith(t, p, prog); err != nil {
				t.Fatal(err)
			}
		}
		testAfterVerify = nil
		if n := len(p.cache); flags == "direct" && n != 1 || flags != "direct" && n != 0 {
			t.Errorf("%s: %d cached fingerprints after %d verifications", flags, n, hashes)
		}
		// The same bytes written again: a new version, hashed again,
		// still valid; other bytes: a mismatch.
		os.WriteFile(prog, b, 0o755)
		if err := planWith(t, p, prog); err != nil {
			t.Fatal(err)
		}
		if n := len(p.cache); flags == "direct" && n != 2 {
			t.Errorf("%s: rewritten file not hashed again (%d cached)", flags, n)
		}
		os.WriteFile(prog, append(b[:len(b):len(b)], 0), 0o755)
		if err := planWith(t, p, prog); !errors.Is(err, unix.EPERM) {
			t.Errorf("%s: modified file: %v", flags, err)
		}
		os.WriteFile(prog, b, 0o755)
	}
}
