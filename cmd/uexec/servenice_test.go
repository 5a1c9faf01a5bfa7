package main

import (
	"strings"
	"testing"

	"github.com/uexec/uexec/internal/testenv"
)

// TestTreeServingPriority: the thread of uexec that answers the tree's
// execs runs at nice -10 as root and with a time slice of 0.1 ms for any
// user (so that the caller it wakes does not preempt it and then move its
// exec to the other, halted CPU: see backend/linux/servenice.go), and
// nothing of the tree gets either: the program and its children keep their
// caller's nice (3 here, from nice(1)) and slice, as do uexec's other
// threads.
func TestTreeServingPriority(t *testing.T) {
	needRun(t)
	nice := testenv.NeedTool(t, "nice")
	_, bin := sharedUexec(t)
	// A line per task: who, its nice and its slice.
	show := `echo "$2 $(cut -d' ' -f19 $1/stat) $(sed -n 's/^se.slice *: *//p' $1/sched)"`
	script := `show() { ` + show + `; }; show /proc/self self; sh -c '` + strings.ReplaceAll(show, "'", `'"'"'`) + `' x /proc/self child; ` +
		`for t in /proc/$PPID/task/*; do show $t uexec; done`
	slice := func(prefix ...string) string {
		r := runCmd(t, "", "", append(prefix, "/bin/sh", "-c", `sed -n 's/^se.slice *: *//p' /proc/self/sched`)...)
		return strings.TrimSpace(r.stdout)
	}
	for _, user := range []struct {
		name   string
		prefix []string
		nice   string // the serving thread's
	}{{"root", nil, "-10"}, {"65534", asNobody(t), "3"}} {
		t.Run(user.name, func(t *testing.T) {
			caller := slice(append(append([]string{}, user.prefix...), nice, "-n", "3")...)
			testenv.Need(t, caller != "", "se.slice in /proc/PID/sched (Linux 6.6)")
			r := runCmd(t, "", "", append(append([]string{}, user.prefix...), nice, "-n", "3", bin, "run", "/bin/sh", "-c", script)...)
			if r.status != 0 {
				t.Fatalf("%v", r)
			}
			counts := map[string]int{}
			for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
				counts[l]++
			}
			if want := "self 3 " + caller; counts[want] != 1 || counts["child 3 "+caller] != 1 {
				t.Errorf("the tree's nice and slice are not its caller's (%q):\n%s", want, r.stdout)
			}
			serving := "uexec " + user.nice + " 100000"
			if counts[serving] != 1 {
				t.Errorf("want one thread of uexec with %q (the serving thread), the rest with the caller's nice and slice:\n%s", serving, r.stdout)
			}
			for l, n := range counts {
				if strings.HasPrefix(l, "uexec ") && l != serving && l != "uexec 3 "+caller {
					t.Errorf("%d threads of uexec at %q", n, l)
				}
			}
		})
	}
}
