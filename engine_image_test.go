package uexec

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/uexec/uexec/internal/testenv"
)

// TestSpawnImage starts programs from memory (SpawnRequest.Image): a
// script sees itself as /dev/fd/3 through its still open descriptor (its
// task named after its interpreter's file, as the kernel names it), and
// an ELF (/bin/cat, reading its own /proc files) runs as the memfd
// "memfd:NAME" without the descriptor.
func TestSpawnImage(t *testing.T) {
	testenv.NeedRoot(t)
	cat, err := os.ReadFile("/bin/cat")
	if err != nil {
		t.Skip(err)
	}
	sh, err := filepath.EvalSymlinks("/bin/sh")
	if err != nil {
		t.Skip(err)
	}
	for _, tc := range []struct {
		name  string
		image string
		argv  []string
		want  string
	}{
		{"script", "#!/bin/sh\necho \"$0 $1\"; read c < /proc/$$/comm; echo $c\n", []string{"x", "arg"}, "/dev/fd/3 arg\n" + filepath.Base(sh) + "\n"},
		{"elf", string(cat), []string{"cat", "/proc/self/comm"}, "memfd:mycat\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			p, err := NewEngine().Spawn(ctx, &SpawnRequest{Image: strings.NewReader(tc.image), ImageName: "my" + tc.argv[0],
				Argv: tc.argv, Env: []string{"PATH=/bin:/usr/bin"}, Files: []*os.File{nil, w, os.Stderr}})
			w.Close()
			if err != nil {
				t.Fatal(err)
			}
			st, err := p.Wait()
			if err != nil || !st.Success() {
				t.Fatalf("status %v %v", st, err)
			}
			out := make([]byte, 4096)
			n, _ := r.Read(out)
			if got := string(out[:n]); got != tc.want {
				t.Errorf("printed %q, want %q", got, tc.want)
			}
		})
	}
}
