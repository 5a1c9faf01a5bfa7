//go:build linux && amd64

package linux

import (
	"io"
	"os"
	"testing"
	"time"
)

// TestTracedTree keeps the traced tree of the earlier design honest: every
// exec of a small shell tree is uexec's, and the output is the program's.
func TestTracedTree(t *testing.T) {
	needPtrace(t)
	plan, err := newSwitch(t).Execve(selfRequest(t, "/bin/sh", []string{"sh", "-c", "/bin/echo one; /bin/true && echo two"}, nil, false))
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var execs []*ExecEvent
	tr, err := StartTree(plan, &Options{Files: []*os.File{nil, w, os.Stderr}}, &TreeOptions{Switch: newSwitch(t), Traced: true,
		OnExec: func(ev *ExecEvent) { execs = append(execs, ev) }})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 1)
	go func() { b, _ := io.ReadAll(r); got <- b }()
	var out []byte
	select {
	case out = <-got:
	case <-time.After(20 * time.Second):
		t.Fatal("no end of the tree's output after 20 s")
	}
	<-tr.Done()
	if ws := tr.Wait(); ws.ExitStatus() != 0 {
		t.Errorf("status %v", ws)
	}
	if string(out) != "one\ntwo\n" {
		t.Errorf("output %q", out)
	}
	if len(execs) != 2 {
		t.Fatalf("%d execs logged, want 2", len(execs))
	}
	for _, ev := range execs {
		if ev.By != "uexec" || ev.Err != nil {
			t.Errorf("exec %+v, want uexec's", ev)
		}
	}
}
