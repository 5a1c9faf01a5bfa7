package veriexec

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uexec/uexec"
)

// TestRewrittenAfterCheck: a program rewritten between its verification
// and its mapping (the window widened by testAfterVerify) never runs: the
// stub finds the file's ctime changed after mapping it and ends the image
// with SIGSEGV before its first instruction, whatever the new bytes are.
func TestRewrittenAfterCheck(t *testing.T) {
	echo, err := os.ReadFile("/bin/echo")
	if err != nil {
		t.Skip(err)
	}
	falseBytes, err := os.ReadFile("/bin/false")
	if err != nil {
		t.Skip(err)
	}
	flipped := append([]byte(nil), echo...)
	flipped[len(flipped)/2] ^= 0xff
	tests := []struct {
		name    string
		rewrite []byte // nil: not rewritten
		strict  Strict
	}{
		{"not rewritten", nil, IDS},
		{"replaced by /bin/false in place", falseBytes, IDS},
		{"one byte changed, same size", flipped, IDS},
		{"same bytes written again", echo, IDS},
		// The window is real: unpinned (learning), the new bytes run.
		{"learning, replaced by /bin/false", falseBytes, Learning},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, _ := filepath.EvalSymlinks(t.TempDir())
			prog := filepath.Join(dir, "prog")
			if err := os.WriteFile(prog, echo, 0o755); err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(echo)
			tab, err := Parse(strings.NewReader(prog+" SHA256 "+hex.EncodeToString(sum[:])+"\n"), "sigs")
			if err != nil {
				t.Fatal(err)
			}
			testAfterVerify = func(name string) {
				if name == prog && tc.rewrite != nil {
					// In place: the same inode, the descriptor the policy
					// read now reads other bytes.
					if err := os.WriteFile(prog, tc.rewrite, 0o755); err != nil {
						t.Error(err)
					}
				}
			}
			defer func() { testAfterVerify = nil }()
			e := uexec.NewEngine()
			e.Switch.Policies = append(e.Switch.Policies, tab.Policy(tc.strict))
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			p, err := e.Spawn(ctx, &uexec.SpawnRequest{Path: prog, Argv: []string{"prog", "hi"}, Files: []*os.File{nil, w, w}})
			w.Close()
			if err != nil {
				r.Close()
				// The stub's death is reported as Spawn's error.
				if tc.rewrite == nil || tc.strict == Learning || !strings.Contains(err.Error(), "is the verified version") ||
					!strings.Contains(err.Error(), "stale file handle") {
					t.Fatal(err)
				}
				return
			}
			var out bytes.Buffer
			out.ReadFrom(r)
			r.Close()
			st, err := p.Wait()
			if err != nil {
				t.Fatal(err)
			}
			ws := st.Sys().(syscall.WaitStatus)
			if tc.strict == Learning {
				if ws.ExitStatus() != 1 {
					t.Fatalf("unpinned rewritten program: %v, want /bin/false's exit 1", st)
				}
				return
			}
			if tc.rewrite == nil {
				if !ws.Exited() || ws.ExitStatus() != 0 || out.String() != "hi\n" {
					t.Fatalf("verified program: %v, output %q", st, out.String())
				}
				return
			}
			if !ws.Signaled() || ws.Signal() != syscall.SIGSEGV || out.Len() != 0 {
				t.Fatalf("rewritten program: %v, output %q; want SIGSEGV before it runs", st, out.String())
			}
		})
	}
}
