//go:build linux && amd64

package kernelexec

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
)

// Verdict execs opts.Path natively under ptrace, as Snapshot does, and
// returns only the memory map at the first instruction: the cheap answer
// a differential fuzzer needs for thousands of files. The error is the
// errno of an exec that fails (wrapped), a *KilledError for an exec killed
// after the point of no return, or ctx.Err(). Unlike Snapshot it reads no
// registers, so it works for ELF32 (compat) images too. No process
// outlives the call.
func Verdict(ctx context.Context, opts Options) ([]Mapping, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	type result struct {
		maps []Mapping
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		// The tracer thread is never unlocked; see Snapshot.
		runtime.LockOSThread()
		m, err := verdictLocked(ctx, opts)
		ch <- result{m, err}
	}()
	r := <-ch
	return r.maps, r.err
}

func verdictLocked(ctx context.Context, opts Options) ([]Mapping, error) {
	p, done, err := stoppedAtExec(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer done()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.pid) + "/maps")
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, fmt.Errorf("kernelexec: pid %d: %w", p.pid, err)
	}
	return ParseMaps(b)
}
