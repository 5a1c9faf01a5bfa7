package main

import (
	"strings"
	"testing"

	"github.com/uexec/uexec/internal/testenv"
)

// TestTreeServingPriority: as root, the thread of uexec that answers the
// tree's execs runs at nice -10 (so that the caller it wakes does not
// preempt it and then move its exec to the other, halted CPU: see
// backend/linux/servenice.go), and nothing of the tree gets that nice: the
// program and its children keep their caller's (3 here, from nice(1)), as
// do uexec's other threads.
func TestTreeServingPriority(t *testing.T) {
	needRun(t)
	nice := testenv.NeedTool(t, "nice")
	// Each line: the nice of this process, of a child, and of every
	// thread of uexec (the program's parent).
	script := `echo self $(cut -d' ' -f19 /proc/self/stat); sh -c 'echo child $(cut -d" " -f19 /proc/self/stat)'; ` +
		`for t in /proc/$PPID/task/*; do echo uexec $(cut -d' ' -f19 $t/stat); done`
	r := runCmd(t, "", "", nice, "-n", "3", uexecBin, "run", "/bin/sh", "-c", script)
	if r.status != 0 {
		t.Fatalf("%v", r)
	}
	counts := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		counts[l]++
	}
	if counts["self 3"] != 1 || counts["child 3"] != 1 {
		t.Errorf("the tree's nice is not its caller's 3:\n%s", r.stdout)
	}
	if counts["uexec -10"] != 1 {
		t.Errorf("want one thread of uexec at nice -10 (the serving thread), the rest at 3:\n%s", r.stdout)
	}
	for l, n := range counts {
		if strings.HasPrefix(l, "uexec ") && l != "uexec -10" && l != "uexec 3" {
			t.Errorf("%d threads of uexec at %q", n, l)
		}
	}
}
