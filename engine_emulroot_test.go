package uexec_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec"
)

// TestSpawnEmulRoot: SpawnRequest.EmulRoot finds a program that exists
// only under the root; without it the same path is ENOENT.
func TestSpawnEmulRoot(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	const name = "/bin/uexec-spawn-emul-true"
	if _, err := os.Lstat(name); err == nil {
		t.Fatalf("%s exists in the real root", name)
	}
	b, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, name), b, 0o755); err != nil {
		t.Fatal(err)
	}
	e := uexec.NewEngine()
	if _, err := e.Spawn(context.Background(), &uexec.SpawnRequest{Path: name, Argv: []string{name}}); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("without the root: %v, want ENOENT", err)
	}
	if _, err := e.Spawn(context.Background(), &uexec.SpawnRequest{Path: name, EmulRoot: "rel"}); err == nil {
		t.Fatal("a relative EmulRoot was accepted")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := e.Spawn(ctx, &uexec.SpawnRequest{Path: name, Argv: []string{name}, EmulRoot: root})
	if err != nil {
		t.Fatal(err)
	}
	st, err := p.Wait()
	if err != nil || !st.Success() {
		t.Fatalf("under the root: %v %v", st, err)
	}
}
