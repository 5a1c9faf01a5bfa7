//go:build linux && amd64

package linux

import (
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/internal/testenv"
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

// BenchmarkStartSteps times each step of a start of a static program, for
// the README's table of where one start goes: the plan, the work before
// the fork (compiling, the pipes: step "build:compiled"), the fork's
// return ("build:forked"), the stub's build until the end of its status
// pipe (Start's return), and the program's run and wait; and os/exec's
// whole run of the same program, alternated with it. Each is reported as
// its median over the iterations (us-...). As root: an ordinary user's
// start of this plan is the kernel's exec from the fork.
func BenchmarkStartSteps(b *testing.B) {
	testenv.NeedRoot(b)
	static := cc(b, "static", "int main(void){return 0;}", "-static")
	sw := newSwitch(b)
	var marks map[string]time.Time
	stepHook = func(s string) { marks[s] = time.Now() }
	defer func() { stepHook = nil }()
	steps := map[string][]time.Duration{}
	add := func(name string, d time.Duration) { steps[name] = append(steps[name], d) }
	for b.Loop() {
		t0 := time.Now()
		if err := exec.Command(static).Run(); err != nil {
			b.Fatal(err)
		}
		add("os-exec", time.Since(t0))
		marks = map[string]time.Time{}
		t0 = time.Now()
		plan, err := sw.Execve(selfRequest(b, static, []string{static}, nil, false))
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		p, err := Start(plan, &Options{Files: []*os.File{nil, nil, os.Stderr}})
		if err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		if _, err := p.Wait(); err != nil {
			b.Fatal(err)
		}
		t3 := time.Now()
		plan.Close()
		compiled, forked := marks["build:compiled"], marks["build:forked"]
		if compiled.IsZero() || forked.IsZero() {
			b.Fatalf("the start passed no step marks (%v): the stub did not build it", marks)
		}
		add("plan", t1.Sub(t0))
		add("before-fork", compiled.Sub(t1))
		add("fork", forked.Sub(compiled))
		add("build", t2.Sub(forked))
		add("run-wait", t3.Sub(t2))
		add("total", t3.Sub(t0))
	}
	for name, d := range steps {
		slices.Sort(d)
		b.ReportMetric(float64(d[len(d)/2].Nanoseconds())/1e3, "us-"+name)
	}
}
