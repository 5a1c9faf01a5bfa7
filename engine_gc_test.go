package uexec_test

import (
	"context"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/uexec/uexec"
)

// TestTreeServingStopsForGC: the tree's serving thread, which waits for
// the next exec in a raw system call holding its P (backend/linux
// servePoll), lets the garbage collector stop the world while no exec
// comes: a collection meanwhile takes milliseconds, not until the next
// exec of the tree.
func TestTreeServingStopsForGC(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("one P: the serving thread waits in the runtime's poll")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e := uexec.NewEngine()
	p, err := e.Spawn(ctx, &uexec.SpawnRequest{Path: "/bin/sleep", Argv: []string{"sleep", "3"}, Tree: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		p.Signal(syscall.SIGKILL)
		p.WaitStatus()
	}()
	time.Sleep(200 * time.Millisecond) // the serving thread in its wait
	for i := 0; i < 3; i++ {
		t0 := time.Now()
		runtime.GC()
		d := time.Since(t0)
		t.Logf("collection %d: %v", i, d)
		if d > time.Second {
			t.Fatalf("a collection took %v while the tree waited for an exec", d)
		}
	}
}
