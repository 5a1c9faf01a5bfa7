package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uexec/uexec/internal/testenv"
)

// TestRunCwdWithoutName: from a cwd that has no name to resolve from, one
// that was removed or one whose name is longer than PATH_MAX, an exec still
// runs absolute and relative paths (from the directory itself, ".." to its
// parent), as natively: the first program (tree and --once) and the execs
// of the tree, for root and an ordinary user. uexec failed there (getwd:
// ENOENT, lookup: ENAMETOOLONG), and the tree's relative execs with ENOENT.
// The log names the cwd as procfs does ("NAME (deleted)").
func TestRunCwdWithoutName(t *testing.T) {
	needRun(t)
	testenv.NeedRoot(t) // a user to drop to
	dir, bin := sharedUexec(t)
	copyFile(t, "/bin/echo", filepath.Join(dir, "hello"), 0o755)
	work := filepath.Join(dir, "work")
	os.Mkdir(work, 0o777)
	os.Chmod(work, 0o777)
	long := strings.Repeat("x", 200)
	setups := map[string]string{
		"removed": fmt.Sprintf(`d=$(mktemp -d -p %s) && cp %s/hello $d/.. 2>/dev/null; cd $d && rmdir $d`, work, dir),
		"long":    fmt.Sprintf(`cd $(mktemp -d -p %s) && for i in $(seq 25); do mkdir %s && cd %s || exit 9; done && cp %s/hello .`, work, long, long, dir),
	}
	// In the long cwd, ./hello is there; from the removed one, ../hello
	// is the copy in its parent, which ".." reaches from the directory
	// itself.
	progs := map[string]string{"removed": "../hello", "long": "./hello"}
	for _, user := range [][]string{nil, asNobody(t)} {
		for name, setup := range setups {
			prog := progs[name]
			tree := fmt.Sprintf(`%s x; /bin/echo abs; %s y; echo $?`, prog, prog)
			for _, mode := range []struct{ name, native, under string }{
				// env(1): bash's own exec makes the name absolute.
				{"first", "exec env " + prog + " first", "exec " + bin + " run " + prog + " first"},
				{"once", "exec env " + prog + " once", "exec " + bin + " run --once " + prog + " once"},
				{"tree", "exec env /bin/sh -c '" + tree + "'", "exec " + bin + " run /bin/sh -c '" + tree + "'"},
			} {
				native := runCmd(t, "", "/", append(append([]string{}, user...), "/bin/bash", "-c", setup+" && "+mode.native)...)
				under := runCmd(t, "", "/", append(append([]string{}, user...), "/bin/bash", "-c", setup+" && "+mode.under)...)
				if !strings.Contains(native.stdout, mode.name) && !strings.Contains(native.stdout, "x\nabs\ny\n0\n") || native.String() != under.String() {
					t.Errorf("%v %s cwd, %s: natively:\n%v\nunder uexec:\n%v", user, name, mode.name, native, under)
				}
			}
		}
	}
	// The log's cwd.
	r := runCmd(t, "", "/", "/bin/sh", "-c", setups["removed"]+" && exec "+bin+" run --log-execs - /bin/sh -c /bin/true")
	if n := strings.Count(r.stderr, ` (deleted)","path"`); n != 2 {
		t.Errorf("the log names the removed cwd %d times, want 2 (sh and true):\n%s", n, r.stderr)
	}
}

// TestRunUnsearchableCwd: an ordinary user whose cwd is a directory it
// may not search (root's 0700, the cwd inherited through setpriv) runs
// programs there as natively, the first program (tree and --once) and the
// tree's: only -C changes the program's directory, as under env(1), and
// uexec failed to enter its own cwd again by name (EACCES: exit 126 with
// --once, and a tree whose stub "could not be executed"). -C to such a
// directory is env's failure: exit 125, naming it.
func TestRunUnsearchableCwd(t *testing.T) {
	needRun(t)
	testenv.NeedRoot(t) // a user to drop to, and a directory it may not search
	dir, bin := sharedUexec(t)
	locked := filepath.Join(dir, "locked")
	if err := os.Mkdir(locked, 0o700); err != nil {
		t.Fatal(err)
	}
	user := asNobody(t)
	script := "/bin/pwd; /bin/echo ok"
	native := runCmd(t, "", locked, append(append([]string{}, user...), "/bin/sh", "-c", script)...)
	if native.status != 0 || !strings.Contains(native.stdout, "ok") {
		t.Fatalf("natively: %v", native)
	}
	for _, mode := range [][]string{{"run"}, {"run", "--once"}} {
		under := runCmd(t, "", locked, append(append(append([]string{}, user...), bin), append(mode, "/bin/sh", "-c", script)...)...)
		if native.String() != under.String() {
			t.Errorf("uexec %v: natively:\n%v\nunder uexec:\n%v", mode, native, under)
		}
	}
	env := runCmd(t, "", "/", append(append([]string{}, user...), "env", "-C", locked, "/bin/true")...)
	for _, mode := range [][]string{{"run"}, {"run", "--once"}} {
		under := runCmd(t, "", "/", append(append(append([]string{}, user...), bin), append(mode, "-C", locked, "/bin/true")...)...)
		if under.status != env.status || !strings.Contains(under.stderr, "cannot change directory to '"+locked+"'") {
			t.Errorf("uexec %v -C %s: %v; env -C: %v", mode, locked, under, env)
		}
	}
}
