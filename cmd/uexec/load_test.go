package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uexec/uexec/internal/testenv"
)

// loopScript runs /bin/true n times, then exits with status code.
func loopScript(n, code int) string {
	return fmt.Sprintf("i=0; while [ $i -lt %d ]; do /bin/true || exit 99; i=$((i+1)); done; exit %d", n, code)
}

// TestLoadConcurrentTrees runs 8 trees of 500 execs each at once: each
// ends with its own status.
func TestLoadConcurrentTrees(t *testing.T) {
	needRun(t)
	if testing.Short() {
		t.Skip("long: 4000 execs (-short)")
	}
	const trees, execs = 8, 500
	var wg sync.WaitGroup
	results := make([]result, trees)
	for i := range trees {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = runCmd(t, "", "", uexecBin, "run", "--build", "/bin/sh", "-c", loopScript(execs, 10+i))
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.status.ExitStatus() != 10+i || r.stderr != "" {
			t.Errorf("tree %d: want exit %d, got\n%v", i, 10+i, r)
		}
	}
}

// sample reads uexec's VmRSS (kB) and its number of descriptors.
func sample(pid int) (rss, fds int, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			rss, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return rss, len(ents), err
}

// TestLoadFlat runs 10,000 execs in one tree and samples uexec's RSS and
// descriptor count meanwhile: after a warm-up both stay flat (RSS within
// 8 MiB and 25% of the first sample after it, descriptors within 2).
func TestLoadFlat(t *testing.T) {
	needRun(t)
	if testing.Short() {
		t.Skip("long: 10,000 execs (-short)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), runDeadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, uexecBin, "run", "--build", "/bin/sh", "-c", loopScript(10000, 0))
	cmd.Env = testEnv
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	type point struct{ rss, fds int }
	var pts []point
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
loop:
	for {
		select {
		case err := <-done:
			if ctx.Err() != nil {
				t.Fatalf("10,000 execs did not end within %v", runDeadline)
			}
			if err != nil {
				t.Fatalf("uexec: %v\n%s", err, stderr.String())
			}
			break loop
		case <-tick.C:
			if rss, fds, err := sample(cmd.Process.Pid); err == nil {
				pts = append(pts, point{rss, fds})
			}
		}
	}
	if len(pts) < 10 {
		t.Fatalf("only %d samples", len(pts))
	}
	// A sample taken during a redirect sees its descriptors: compare the
	// ranges of the second fifth to half (after the warm-up) and of the
	// last quarter.
	span := func(ps []point) (minR, maxR, minF, maxF int) {
		minR, minF = 1<<62, 1<<62
		for _, p := range ps {
			minR, maxR, minF, maxF = min(minR, p.rss), max(maxR, p.rss), min(minF, p.fds), max(maxF, p.fds)
		}
		return
	}
	_, earlyR, earlyMinF, earlyMaxF := span(pts[len(pts)/5 : len(pts)/2])
	_, lateR, lateMinF, lateMaxF := span(pts[len(pts)*3/4:])
	if lateR > earlyR+8<<10 || lateR > earlyR*5/4 {
		t.Errorf("RSS grew: at most %d kB after the warm-up, %d kB in the last quarter", earlyR, lateR)
	}
	if lateMinF > earlyMinF+2 || lateMaxF > earlyMaxF+2 {
		t.Errorf("descriptors grew: %d..%d after the warm-up, %d..%d in the last quarter", earlyMinF, earlyMaxF, lateMinF, lateMaxF)
	}
	t.Logf("%d samples: RSS %d..%d kB, descriptors %d..%d", len(pts), pts[0].rss, pts[len(pts)-1].rss, pts[0].fds, pts[len(pts)-1].fds)
}

// TestLoadForkBomb runs a fork bomb bounded by RLIMIT_NPROC, as uid 65534
// (root's processes are not counted), natively and inside a tree: each
// branch forks two more down to a depth of 8 (511 processes wanted, 40
// allowed) and the leaves exec /bin/true. Forks fail with EAGAIN; both
// runs end within the deadline, and uexec ends with the shell's status,
// not killed.
func TestLoadForkBomb(t *testing.T) {
	needRun(t)
	setpriv := testenv.NeedTool(t, "setpriv")
	prlimit := testenv.NeedTool(t, "prlimit")
	bomb := `b() { if [ $1 -eq 0 ]; then /bin/true; return; fi; b $(($1-1)) & b $(($1-1)) & wait; }; (b 8); echo end`
	argv := []string{setpriv, "--reuid", "65534", "--regid", "65534", "--clear-groups", prlimit, "--nproc=40", "/bin/sh", "-c", bomb}
	native := runCmd(t, "", "/", argv...)
	under := runCmd(t, "", "/", append([]string{uexecBin, "run", "--build"}, argv...)...)
	if under.status.Signaled() || under.status.ExitStatus() != native.status.ExitStatus() || !strings.HasSuffix(under.stdout, "end\n") {
		t.Errorf("natively %v\nunder uexec %v", native.status, under)
	}
	if strings.Contains(under.stderr, "uexec") {
		t.Errorf("uexec complained:\n%s", under.stderr)
	}
	t.Logf("natively: %v, %d lines on stderr; under uexec: %d", native.status, strings.Count(native.stderr, "\n"), strings.Count(under.stderr, "\n"))
}
