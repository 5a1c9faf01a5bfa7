//go:build linux && amd64

package linux

import (
	"os"
	"os/exec"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/vm"
)

// BenchmarkStart measures a whole start and wait under uexec (planning
// excluded, "plan+start" included) against fork+exec by os/exec.
func BenchmarkStart(b *testing.B) {
	needPtrace(b)
	static := cc(b, "static", "int main(void){return 0;}", "-static")
	for _, path := range []string{static, "/bin/true"} {
		name := "static"
		if path == "/bin/true" {
			name = "true"
		}
		argv := []string{path}
		b.Run(name+"/native", func(b *testing.B) {
			for b.Loop() {
				if err := exec.Command(path).Run(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/uexec", func(b *testing.B) {
			plan, err := newSwitch(b).Execve(selfRequest(b, path, argv, nil, false))
			if err != nil {
				b.Fatal(err)
			}
			defer plan.Close()
			for b.Loop() {
				p, err := Start(plan, &Options{Files: []*os.File{nil, nil, os.Stderr}})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := p.Wait(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/plan+uexec", func(b *testing.B) {
			sw := newSwitch(b)
			for b.Loop() {
				plan, err := sw.Execve(selfRequest(b, path, argv, nil, false))
				if err != nil {
					b.Fatal(err)
				}
				p, err := Start(plan, &Options{Files: []*os.File{nil, nil, os.Stderr}})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := p.Wait(); err != nil {
					b.Fatal(err)
				}
				plan.Close()
			}
		})
	}
}

// BenchmarkSteps measures the steps of one start that happen in this
// process, for the README's breakdown: compiling the plan into the stub's
// program, and writing it to a sealed memfd or to a pipe.
func BenchmarkSteps(b *testing.B) {
	needPtrace(b)
	plan, err := newSwitch(b).Execve(selfRequest(b, "/bin/true", []string{"/bin/true"}, nil, false))
	if err != nil {
		b.Fatal(err)
	}
	defer plan.Close()
	b.Run("compile", func(b *testing.B) {
		env := &stubEnv{fds: map[*vm.File]int{}, rand: randReader(nil), statusFD: 9, vdso: vdsoOnce(), exe: programFile(plan), rlimit: 8 << 20}
		for i, f := range planFileList(plan) {
			env.fds[f] = 3 + i
		}
		b.ReportAllocs()
		for b.Loop() {
			cp, err := compile(plan, env)
			if err != nil {
				b.Fatal(err)
			}
			cp.release() // as a start does, once the stub has its plan
		}
	})
	// The plan's descriptor: a sealed memfd, and what Start makes (a
	// pipe, for a plan that fits one).
	for _, tc := range []struct {
		name string
		make func([]byte) (int, error)
	}{{"memfd", planMemfd}, {"plan-fd", planDescriptor}} {
		b.Run(tc.name, func(b *testing.B) {
			prog := make([]byte, 8000)
			for b.Loop() {
				fd, err := tc.make(prog)
				if err != nil {
					b.Fatal(err)
				}
				unix.Close(fd)
			}
		})
	}
}
