package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/uexec/uexec/internal/testenv"
)

// TestSecurityPathRace: a thread of the caller rewrites the path buffer
// (between DIR/a and DIR/b) while execve is pending, 200 times, natively
// and under `uexec run`. uexec reads the path once and plans, opens and
// names the program from its copy, as the kernel does from its own: the
// script that runs is always the one its $0 (the path as exec'd, from
// that copy) names.
func TestSecurityPathRace(t *testing.T) {
	needRun(t)
	pathrace := testenv.BuildC(t, "testdata/progs/pathrace.c", "-pthread")
	dir := testenv.SharedTempDir(t)
	for _, n := range []string{"a", "b"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("#!/bin/sh\necho "+n+" \"$0\"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	line := regexp.MustCompile(`^([ab]) ` + regexp.QuoteMeta(dir) + `/([ab])$`)
	argv := []string{pathrace, filepath.Join(dir, "a"), filepath.Join(dir, "b"), "200"}
	for _, run := range [][]string{argv, append([]string{uexecBin, "run", "--build"}, argv...)} {
		r := runCmd(t, "", "", run...)
		seen := map[string]int{}
		for _, l := range strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n") {
			m := line.FindStringSubmatch(l)
			if m == nil || m[1] != m[2] {
				t.Errorf("%s: %q: the program is not the file its name says", run[0], l)
				continue
			}
			seen[m[1]]++
		}
		if r.status != 0 || seen["a"]+seen["b"] != 200 {
			t.Errorf("%s: %v", run[0], r)
		}
		t.Logf("%s: %v", filepath.Base(run[0]), fmt.Sprint(seen))
	}
}
