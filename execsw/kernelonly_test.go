package execsw

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestKernelOnlyPlan: only a file uexec may not read (ErrUnreadable) gets
// the kernel's exec, and only where nothing of the switch or the request
// could make the exec other than the kernel's.
func TestKernelOnlyPlan(t *testing.T) {
	unreadable := &ExecError{Path: "/x/interp", Err: fmt.Errorf("%w: %w", ErrUnreadable, unix.EACCES)}
	req := func() *Request { return &Request{Path: "/x/prog", Cred: Cred{UID: 7, EUID: 8, GID: 9, EGID: 10}} }
	native := &Switch{}
	// (The kernel, asked about /x/prog, answers ENOENT; /dev/fd/0 is a
	// pipe or a terminal here, which the kernel refuses with EACCES: a
	// regular file is asked for.)
	prog, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	r := req()
	r.Path, r.Argv = prog, []string{"x", "-test.run=^$"}
	p, err := native.KernelOnlyPlan(r, unreadable)
	if err != nil || p == nil || !strings.Contains(p.KernelOnly, "uexec may not read /x/interp") || p.Comm != comm(prog) ||
		p.Cred.UID != 7 || p.Cred.EUID != 8 || p.Cred.GID != 9 || p.Cred.EGID != 10 || len(p.Cmds) != 0 {
		t.Errorf("an unreadable file, a native switch: %+v", p)
	}
	withRule := &Switch{}
	withRule.Add(&fakeFormat{name: "m", magic: "MAGIC", hdr: 8}, PrioAny)
	emul := req()
	emul.EmulRoot = "/emul"
	for name, c := range map[string]struct {
		sw  *Switch
		req *Request
		err error
	}{
		"no execute permission": {native, req(), execErr("/x/prog", unix.EACCES, "no execute permission")},
		"another errno":         {native, req(), &ExecError{Path: "/x/prog", Err: unix.ENOENT}},
		"no error":              {native, req(), nil},
		"a format of uexec's":   {withRule, req(), unreadable},
		"an emulation root":     {native, emul, unreadable},
	} {
		if p, err := c.sw.KernelOnlyPlan(c.req, c.err); p != nil || err != c.err {
			t.Errorf("%s: %+v, %v", name, p, err)
		}
	}
	// Where the kernel's exec fails, its errno.
	if p, err := native.KernelOnlyPlan(req(), unreadable); p != nil || !errors.Is(err, unix.ENOENT) {
		t.Errorf("a file the kernel finds missing: %+v, %v", p, err)
	}
	if !errors.Is(unreadable, unix.EACCES) {
		t.Error("ErrUnreadable's error is not EACCES")
	}
}
