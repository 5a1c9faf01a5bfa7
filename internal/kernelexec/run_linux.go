//go:build linux && amd64

package kernelexec

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
)

// Run runs a program natively (not traced) with opts, ignoring
// opts.Files, and returns what it wrote to stdout and stderr and its exit
// status (-1 when a signal ended it). Cancelling ctx kills it; no process
// outlives the call.
func Run(ctx context.Context, opts Options) (stdout, stderr []byte, status int, err error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, 0, err
	}
	type result struct {
		out, errOut []byte
		status      int
		err         error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // the personality trick in spawn; the thread ends with us
		var r result
		r.out, r.errOut, r.status, r.err = runLocked(ctx, opts)
		ch <- r
	}()
	r := <-ch
	return r.out, r.errOut, r.status, r.err
}

func runLocked(ctx context.Context, opts Options) ([]byte, []byte, int, error) {
	null, err := os.Open(os.DevNull)
	if err != nil {
		return nil, nil, 0, err
	}
	defer null.Close()
	or, ow, err := os.Pipe()
	if err != nil {
		return nil, nil, 0, err
	}
	defer or.Close()
	er, ew, err := os.Pipe()
	if err != nil {
		ow.Close()
		return nil, nil, 0, err
	}
	defer er.Close()
	opts.Files = []uintptr{null.Fd(), ow.Fd(), ew.Fd()}
	p, err := spawn(opts, false)
	ow.Close()
	ew.Close()
	if err != nil {
		return nil, nil, 0, err
	}
	defer p.destroy()
	stop := context.AfterFunc(ctx, p.kill)
	defer stop()
	var out, errOut bytes.Buffer
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); io.Copy(&out, or) }()
	go func() { defer wg.Done(); io.Copy(&errOut, er) }()
	ws, err := p.wait()
	if err != nil {
		return nil, nil, 0, err
	}
	for !ws.Exited() && !ws.Signaled() {
		if ws, err = p.wait(); err != nil {
			return nil, nil, 0, err
		}
	}
	wg.Wait() // a grandchild holding the pipes open would block here; the probe has none
	if ctx.Err() != nil {
		return nil, nil, 0, ctx.Err()
	}
	status := ws.ExitStatus()
	if ws.Signaled() {
		status = -1
	}
	if len(opts.Rlimits) > 0 && ws.Exited() && status >= 250 {
		return out.Bytes(), errOut.Bytes(), status, launcherExit(p.pid, status)
	}
	return out.Bytes(), errOut.Bytes(), status, nil
}

// RunProbe runs a probe binary (BuildProbe) natively with opts (opts.Path
// is the binary) and parses its output.
func RunProbe(ctx context.Context, opts Options) (*ProbeOutput, error) {
	out, errOut, status, err := Run(ctx, opts)
	if err != nil {
		return nil, err
	}
	if status != 0 {
		return nil, fmt.Errorf("kernelexec: probe %s exited with status %d: %s", opts.Path, status, errOut)
	}
	return ParseProbe(out)
}
