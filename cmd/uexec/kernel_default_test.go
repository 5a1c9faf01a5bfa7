package main

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// pfSuperpriv is the task flag of a process that used a capability
// (include/linux/sched.h), field 9 of /proc/PID/stat.
const pfSuperpriv = 0x100

// TestTreeKernelByDefault: in root's tree without rules or policies the
// kernel does every exec whose plan is its own, so that what only the
// kernel's exec gives is native (PF_SUPERPRIV clear, /proc/self/exe);
// --build has uexec's stub build them, with the difference the README
// names; a binfmt rule or a stop at exec in the tree makes uexec build
// every exec again, matched or not.
func TestTreeKernelByDefault(t *testing.T) {
	needRun(t)
	script := `cut -d" " -f9 /proc/self/stat; readlink /proc/self/exe`
	native := runCmd(t, "", "/", "/bin/sh", "-c", script)
	if native.status != 0 {
		t.Fatalf("natively: %v", native)
	}
	flags := func(r result) (uint64, string) {
		t.Helper()
		f, rest, _ := strings.Cut(r.stdout, "\n")
		n, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			t.Fatalf("flags %q: %v (%v)", f, err, r)
		}
		return n, rest
	}
	nFlags, nExe := flags(native)
	for _, mode := range treeModes {
		t.Run(mode.name, func(t *testing.T) {
			log := filepath.Join(t.TempDir(), "log")
			argv := append(append([]string{uexecBin, "run", "--log-execs", log}, mode.args...), "/bin/sh", "-c", script)
			under := runCmd(t, "", "/", argv...)
			uFlags, uExe := flags(under)
			want := nFlags
			if mode.by == "uexec" {
				want |= pfSuperpriv // README, Differences: PF_SUPERPRIV
			}
			if uFlags != want || uExe != nExe {
				t.Errorf("flags %#x, exe %q; want %#x, %q (natively %#x)", uFlags, uExe, want, nExe, nFlags)
			}
			lines := readExecLog(t, log)
			if len(lines) != 3 {
				t.Errorf("%d exec lines, want sh, cut and readlink: %+v", len(lines), lines)
			}
			for _, l := range lines {
				if l.By != mode.by {
					t.Errorf("by %s, want %s: %+v", l.By, mode.by, l)
				}
				if mode.by == "kernel" && (l.Result != "kernel" || !strings.Contains(l.Note, "the plan is its own exec")) {
					t.Errorf("a kernel's exec logged as %+v", l)
				}
				if len(l.Chain) == 0 {
					t.Errorf("no plan in the log: %+v", l)
				}
			}
		})
	}
	verbose := runCmd(t, "", "/", uexecBin, "run", "--verbose", "/bin/true")
	if !strings.Contains(verbose.stderr, "uexec: note: exact by the kernel: the plan is its own exec") {
		t.Errorf("--verbose does not say the kernel does the exec:\n%s", verbose.stderr)
	}
	// Something of uexec's in the tree: uexec builds, matched or not.
	for _, opt := range [][]string{{"--binfmt", ":nomatch:E::uexec-nomatch::/bin/false:"}, {"--stop-at-exec", "/uexec-nomatch*"}} {
		log := filepath.Join(t.TempDir(), "log")
		r := runCmd(t, "", "/", append(append([]string{uexecBin, "run", "--log-execs", log}, opt...), "/bin/sh", "-c", "/bin/true")...)
		if r.status != 0 {
			t.Errorf("%v: %v", opt, r)
		}
		for _, l := range readExecLog(t, log) {
			if l.By != "uexec" {
				t.Errorf("with %v: by %s: %+v", opt, l.By, l)
			}
		}
	}
}
