package uexec_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/uexec/uexec"
)

// TestSpawnChildNames: Spawn resolves an exec's path as its child would,
// as os.StartProcess leaves it: /dev/fd/N and /proc/self/fd/N are the
// child's Files[N] (were this process's descriptors), /proc/self/cwd is Dir,
// and AT_EXECFN, comm and a script's $0 keep the name given; standard
// descriptors past Files are closed in the child (were this process's).
// A context done already starts nothing.
func TestSpawnChildNames(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "s.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$0 $(cat /proc/$$/comm)\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	run := func(spawn bool, path string, argv []string, wd string, files func(w *os.File) []*os.File) string {
		t.Helper()
		os.Remove(out)
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		fs := files(w)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if spawn {
			p, err := uexec.NewEngine().Spawn(ctx, &uexec.SpawnRequest{Path: path, Argv: argv, Env: []string{"PATH=/usr/bin:/bin"}, Dir: wd, Files: fs})
			w.Close()
			if err != nil {
				return "spawn: " + err.Error()
			}
			if _, err := p.Wait(); err != nil {
				t.Fatal(err)
			}
		} else {
			p, err := os.StartProcess(path, argv, &os.ProcAttr{Dir: wd, Env: []string{"PATH=/usr/bin:/bin"}, Files: fs})
			w.Close()
			if err != nil {
				return "start: " + err.Error()
			}
			p.Wait()
		}
		b := make([]byte, 4096)
		n, _ := r.Read(b)
		f, _ := os.ReadFile(out)
		return string(b[:n]) + string(f)
	}
	sf, err := os.Open(script)
	if err != nil {
		t.Fatal(err)
	}
	defer sf.Close()
	withScript := func(w *os.File) []*os.File { return []*os.File{os.Stdin, w, os.Stderr, sf} }
	onlyStdin := func(*os.File) []*os.File { return []*os.File{os.Stdin} }
	scriptIn := func(w *os.File) []*os.File { return []*os.File{sf, w, os.Stderr} }
	listFDs := []string{"sh", "-c", "for f in 0 1 2; do [ -e /proc/$$/fd/$f ] && echo $f >>" + out + "; done"}
	for _, c := range []struct {
		path  string
		argv  []string
		dir   string
		files func(*os.File) []*os.File
		want  string
	}{
		{"/dev/fd/3", []string{"x"}, "", withScript, "/dev/fd/3 3\n"},
		{"/proc/self/fd/3", []string{"x"}, "", withScript, "/proc/self/fd/3 3\n"},
		{"/proc/self/cwd/s.sh", []string{"x"}, dir, withScript, "/proc/self/cwd/s.sh s.sh\n"},
		{"/proc/thread-self/cwd/s.sh", []string{"x"}, dir, withScript, "/proc/thread-self/cwd/s.sh s.sh\n"},
		{"/dev//fd/./3", []string{"x"}, "", withScript, "/dev//fd/./3 3\n"},
		{"fd/3", []string{"x"}, "/dev", withScript, "fd/3 3\n"},
		{"/dev/stdin", []string{"x"}, "", scriptIn, "/dev/stdin stdin\n"},
		{"/bin/sh", listFDs, "", onlyStdin, "0\n"},
	} {
		native := run(false, c.path, c.argv, c.dir, c.files)
		got := run(true, c.path, c.argv, c.dir, c.files)
		if native != c.want || got != native {
			t.Errorf("%s: Spawn gives %q, os.StartProcess %q (want %q)", c.path, got, native, c.want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	os.Remove(out)
	if p, err := uexec.NewEngine().Spawn(ctx, &uexec.SpawnRequest{Path: "/bin/sh", Argv: []string{"sh", "-c", "touch " + out}}); p != nil || err != context.Canceled {
		t.Errorf("Spawn with a cancelled context: %v, %v", p, err)
	}
	time.Sleep(50 * time.Millisecond)
	if _, err := os.Stat(out); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("Spawn with a cancelled context started the program: %v", err)
	}
}
