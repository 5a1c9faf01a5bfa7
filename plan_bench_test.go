package uexec_test

import (
	"os"
	"testing"

	"github.com/uexec/uexec"
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
