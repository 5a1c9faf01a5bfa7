package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/uexec/uexec/internal/testenv"
)

// TestTreeNoRoot: in root's tree, a caller that set SECBIT_NOROOT (root's
// exec then gives no capabilities, which procfs does not show) gets the
// program as natively: /proc/self/exe names it (its stub, without
// CAP_SYS_ADMIN after the exec, made the caller's exec instead; it named the
// stub's copy, and a shell re-executing itself through it died of SIGSEGV),
// with the capabilities the kernel leaves; the log says it was the
// kernel's and why. Without the bit the stub builds the image.
func TestTreeNoRoot(t *testing.T) {
	needRun(t)
	testenv.NeedRoot(t)
	noroot := testenv.BuildC(t, "testdata/progs/noroot.c")
	script := `readlink /proc/$$/exe; grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/$$/status; exec /proc/$$/exe -c 'echo again; readlink /proc/$$/exe'`
	for _, bits := range []string{"1", "0"} {
		argv := []string{noroot, bits, "/bin/sh", "-c", script}
		native := runCmd(t, "", "/", argv...)
		if native.status != 0 || !strings.HasPrefix(native.stdout, "/usr/bin/dash\n") || !strings.Contains(native.stdout, "again\n") {
			t.Fatalf("natively, securebits %s: %v", bits, native)
		}
		under := runCmd(t, "", "/", append([]string{uexecBin, "run", "--build", "--log-execs", "-"}, argv...)...)
		lines, rest := splitLog(under.stderr)
		under.stderr = rest
		if under.String() != native.String() {
			t.Errorf("securebits %s, under uexec run:\n%v\nnatively:\n%v", bits, under, native)
		}
		for _, l := range lines {
			var ev struct{ Event, Path, By, Note string }
			if json.Unmarshal([]byte(l), &ev) != nil || ev.Event != "exec" || ev.Path != "/bin/sh" {
				continue
			}
			if kernel := bits == "1"; (ev.By == "kernel") != kernel || kernel && !strings.Contains(ev.Note, "SECBIT_NOROOT") {
				t.Errorf("securebits %s: the log's line of /bin/sh: %s", bits, l)
			}
		}
	}
}
