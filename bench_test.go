package uexec_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/uexec/uexec"
	"github.com/uexec/uexec/internal/testenv"
	"github.com/uexec/uexec/stack"
)

// BenchmarkPlan measures planning an exec (everything up to the point of no
// return) of real programs, files in the page cache.
func BenchmarkPlan(b *testing.B) {
	host, err := stack.HostFromProc()
	if err != nil {
		b.Fatal(err)
	}
	for _, prog := range []string{"/bin/ls", "/bin/true"} {
		if _, err := os.Stat(prog); err != nil {
			continue
		}
		b.Run(prog, func(b *testing.B) {
			sw := uexec.NewSwitch()
			req, err := uexec.SelfRequest(prog, []string{prog, "-l"}, []string{"HOME=/root", "PATH=/usr/bin:/bin"})
			if err != nil {
				b.Fatal(err)
			}
			req.Host = host
			b.ReportAllocs()
			for b.Loop() {
				p, err := sw.Execve(req)
				if err != nil {
					b.Fatal(err)
				}
				p.Close()
			}
		})
	}
}

// BenchmarkSpawn compares Engine.Spawn with os/exec for a static and a
// dynamic program: start, run to exit, wait.
func BenchmarkSpawn(b *testing.B) {
	testenv.NeedRoot(b)
	src := filepath.Join(b.TempDir(), "t.c")
	os.WriteFile(src, []byte("int main(void){return 0;}\n"), 0o644)
	progs := map[string]string{
		"static":  testenv.BuildC(b, src, "-static"),
		"dynamic": testenv.BuildC(b, src),
	}
	e := uexec.NewEngine()
	for _, name := range []string{"static", "dynamic"} {
		prog := progs[name]
		b.Run(name+"/os-exec", func(b *testing.B) {
			for b.Loop() {
				if err := exec.Command(prog).Run(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/spawn", func(b *testing.B) {
			for b.Loop() {
				p, err := e.Spawn(context.Background(), &uexec.SpawnRequest{Path: prog, Argv: []string{prog}})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := p.Wait(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
