package uexec_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/uexec/uexec"
	"github.com/uexec/uexec/internal/testenv"
)

// TestSpawnUnderFilter: Engine.Spawn in a process under a seccomp filter
// of its own that refuses a call the stub makes and the program does not
// need (prctl, munmap, lseek) starts the program as os/exec does, by the
// kernel, with no stub (Process.Kernel says why); the stub died of the
// refusal. One that refuses close fails Spawn at once with EPERM (Go's
// fork and exec could not close its pipe and waited forever).
func TestSpawnUnderFilter(t *testing.T) {
	if os.Getenv("UEXEC_FILTER_CHILD") != "" {
		p, err := uexec.NewEngine().Spawn(context.Background(), &uexec.SpawnRequest{Path: "/bin/echo",
			Argv: []string{"echo", "hi"}, Env: []string{}, Files: []*os.File{os.Stdin, os.Stdout, os.Stderr}})
		if err != nil {
			fmt.Printf("spawn: %v\n", err)
			return
		}
		st, err := p.Wait()
		fmt.Printf("status %v %v kernel %q\n", st, err, p.Kernel)
		return
	}
	deny := testenv.BuildC(t, "cmd/uexec/testdata/progs/denycall.c")
	for _, nr := range []int{157, 11, 8, 3} { // prctl, munmap, lseek, close
		if testenv.Race && (nr == 11 || nr == 3) {
			t.Logf("system call %d refused: not tried under -race (this test binary needs it to start)", nr)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		cmd := exec.CommandContext(ctx, deny, strconv.Itoa(nr), os.Args[0], "-test.run=^TestSpawnUnderFilter$")
		cmd.Env = append(os.Environ(), "UEXEC_FILTER_CHILD=1")
		out, err := cmd.CombinedOutput()
		timedOut := ctx.Err() == context.DeadlineExceeded
		cancel()
		got := string(out)
		switch {
		case timedOut:
			t.Errorf("system call %d refused: Spawn did not return in 20 s:\n%s", nr, got)
		case nr == 3:
			if !strings.Contains(got, "spawn: ") || !strings.Contains(got, "refuses close(2)") {
				t.Errorf("close refused: %v\n%s", err, got)
			}
		case !strings.HasPrefix(got, "hi\nstatus exit status 0 <nil> kernel \"exact by the kernel: seccomp filters"):
			t.Errorf("system call %d refused: %v\n%s", nr, err, got)
		}
	}
}
