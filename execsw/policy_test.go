package execsw_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec"
	"github.com/uexec/uexec/execsw"
)

// recorder records what it is asked and refuses one name.
type recorder struct {
	asked  []string
	refuse string
}

func (r *recorder) Check(c *execsw.PolicyCheck) error {
	r.asked = append(r.asked, fmt.Sprintf("%s %s", c.Use, c.Path))
	if c.Path == r.refuse {
		return errors.New("not on the list")
	}
	return nil
}

// Policies are asked about the program (direct) and each interpreter
// (indirect: #!, PT_INTERP) in the order the exec opens them; a refusal
// is the caller's EPERM.
func TestPolicies(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "s")
	os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755)
	interp, err := filepath.EvalSymlinks("/bin/sh")
	if err != nil {
		t.Fatal(err)
	}
	sw := uexec.NewSwitch()
	rec := &recorder{}
	sw.Policies = []execsw.Policy{rec}
	req, err := uexec.SelfRequest(script, []string{"s"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := sw.Execve(req)
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	var st unix.Stat_t
	if err := unix.Stat(script, &st); err != nil {
		t.Fatal(err)
	}
	if p.Program.Dev != st.Dev || p.Program.Ino != st.Ino {
		t.Errorf("Plan.Program %d:%d, want the script's %d:%d", p.Program.Dev, p.Program.Ino, st.Dev, st.Ino)
	}
	if len(rec.asked) < 2 || rec.asked[0] != "direct "+script || rec.asked[1] != "indirect /bin/sh" {
		t.Errorf("asked %q, want the script direct, then /bin/sh and its PT_INTERP indirect (%s)", rec.asked, interp)
	}
	if !slices.ContainsFunc(rec.asked[2:], func(s string) bool { return s == "indirect /lib64/ld-linux-x86-64.so.2" }) {
		t.Errorf("asked %q: no PT_INTERP", rec.asked)
	}
	for _, refuse := range []string{script, "/bin/sh", "/lib64/ld-linux-x86-64.so.2"} {
		rec := &recorder{refuse: refuse}
		sw.Policies = []execsw.Policy{rec}
		_, err := sw.Execve(req)
		if !errors.Is(err, unix.EPERM) {
			t.Errorf("refusing %s: %v, want EPERM", refuse, err)
		}
	}
}
