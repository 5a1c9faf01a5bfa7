package uexec_test

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec"
	"github.com/uexec/uexec/format/binfmt"
	"github.com/uexec/uexec/internal/testelf"
	"github.com/uexec/uexec/internal/testenv"
)

// openFDs counts this process's descriptors.
func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// children lists the pids whose parent is this process.
func children(t *testing.T) []string {
	ents, _ := os.ReadDir("/proc")
	me := strconv.Itoa(os.Getpid())
	var out []string
	for _, e := range ents {
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i > 0 {
			if f := strings.Fields(s[i+1:]); len(f) > 1 && f[1] == me {
				out = append(out, e.Name()+" "+s[:i+1])
			}
		}
	}
	return out
}

// TestSpawnFailuresLeaveNothing makes every kind of exec failure through
// Engine.Spawn and checks the errno and that no process and no descriptor
// is left behind.
func TestSpawnFailuresLeaveNothing(t *testing.T) {
	testenv.NeedRoot(t)
	dir := t.TempDir()
	write := func(name string, b []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, mode)
		os.Chmod(p, mode)
		return p
	}
	garbage := write("garbage", []byte("garbage\n"), 0o755)
	noexec := write("noexec", []byte("#!/bin/sh\n"), 0o644)
	badInterp := write("badinterp", []byte("#!"+dir+"/missing\n"), 0o755)
	fatalELF := testelf.Static64()
	fatalELF.Progs[1].Filesz = 0x4000
	fatal := write("fatal", fatalELF.Bytes(), 0o755)
	noInterp := &testelf.File{Type: elf.ET_DYN, Entry: 0x1000, Interp: dir + "/nothing", Progs: []testelf.Prog{
		{Type: elf.PT_LOAD, Flags: elf.PF_R | elf.PF_X, Off: 0, Vaddr: 0, Filesz: 0x200, Memsz: 0x200, Align: 0x1000}}}
	elfNoInterp := write("nointerp", noInterp.Bytes(), 0o755)
	busy := write("busy", mustRead(t, "/bin/true"), 0o755)
	w, err := os.OpenFile(busy, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	e := uexec.NewEngine()
	// What a Spawn opens once and keeps (/proc/sys/kernel/randomize_va_space)
	// is open before the count.
	if p, err := e.Spawn(context.Background(), &uexec.SpawnRequest{Path: "/bin/true", Argv: []string{"true"}}); err == nil {
		p.Wait()
	}
	before, kids := openFDs(t), children(t)
	for _, tc := range []struct {
		name string
		path string
		argv []string
		want error
	}{
		{"missing", dir + "/nope", nil, unix.ENOENT},
		{"directory", dir, nil, unix.EACCES},
		{"not executable", noexec, nil, unix.EACCES},
		{"garbage", garbage, nil, unix.ENOEXEC},
		{"missing #! interpreter", badInterp, nil, unix.ENOENT},
		{"missing PT_INTERP", elfNoInterp, nil, unix.ENOENT},
		{"text busy", busy, nil, unix.ETXTBSY},
		{"too big", "/bin/true", []string{"true", strings.Repeat("x", 200000)}, unix.E2BIG},
		{"past the point of no return", fatal, nil, uexec.ErrFatal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			argv := tc.argv
			if argv == nil {
				argv = []string{tc.path}
			}
			p, err := e.Spawn(context.Background(), &uexec.SpawnRequest{Path: tc.path, Argv: argv})
			if err == nil {
				p.Wait()
				t.Fatalf("started %s", tc.path)
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
			if tc.want == uexec.ErrFatal {
				var be *uexec.StartError
				if !errors.As(err, &be) || be.Signal != syscall.SIGSEGV {
					t.Errorf("fatal exec: %v, want the SIGSEGV of a failure past the point of no return", err)
				}
			}
		})
	}
	t.Run("missing working directory", func(t *testing.T) {
		// The fork's chdir fails, as os/exec's does.
		p, err := e.Spawn(context.Background(), &uexec.SpawnRequest{Path: "/bin/true", Argv: []string{"true"}, Dir: dir + "/gone"})
		if err == nil {
			p.Wait()
			t.Fatal("started /bin/true")
		}
		if !errors.Is(err, unix.ENOENT) || !strings.Contains(err.Error(), dir+"/gone") {
			t.Errorf("got %v, want ENOENT naming the directory", err)
		}
	})
	// The fork changes directory before its exec: a bad Dir's error comes
	// before the program's, as os/exec's child (the oracle) finds it.
	for _, tc := range []struct{ name, path, dir string }{
		{"not executable", noexec, dir + "/gone"},
		{"directory", dir, dir + "/gone"},
		{"missing", dir + "/nope", noexec},
		{"past the point of no return", fatal, dir + "/gone"},
		{"too big", "/bin/true", dir + "/gone"},
	} {
		t.Run("working directory first, "+tc.name, func(t *testing.T) {
			argv := []string{tc.path}
			if tc.name == "too big" {
				argv = append(argv, strings.Repeat("x", 200000))
			}
			cmd := exec.Command(tc.path, argv[1:]...)
			cmd.Dir = tc.dir
			werr := cmd.Start()
			var want syscall.Errno
			if werr == nil || !errors.As(werr, &want) {
				cmd.Wait()
				t.Fatalf("os/exec: %v, want a chdir errno", werr)
			}
			p, err := e.Spawn(context.Background(), &uexec.SpawnRequest{Path: tc.path, Argv: argv, Dir: tc.dir})
			if err == nil {
				p.Wait()
				t.Fatalf("started %s", tc.path)
			}
			if !errors.Is(err, want) || !strings.Contains(err.Error(), "chdir "+tc.dir) {
				t.Errorf("got %v, want %v naming the directory (os/exec: %v)", err, want, werr)
			}
		})
	}
	if after := openFDs(t); after != before {
		t.Errorf("descriptors: %d before, %d after", before, after)
	}
	if after := children(t); len(after) != len(kids) {
		t.Errorf("children before %v, after %v", kids, after)
	}
}

func mustRead(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSpawnKernel: Process.Kernel says why the kernel made the exec as
// requested, for a 32-bit program (no 32-bit stub), and is empty for a
// program uexec's stub built.
func TestSpawnKernel(t *testing.T) {
	testenv.NeedRoot(t)
	e := &uexec.Engine{}
	for _, c := range []struct {
		path, want string
	}{
		{"/bin/true", ""},
		{static32().Write(t, "exit32"), "a 32-bit image"},
	} {
		p, err := e.Spawn(context.Background(), &uexec.SpawnRequest{Path: c.path, Argv: []string{c.path}})
		if errors.Is(err, syscall.ENOEXEC) && c.want != "" {
			continue // the kernel runs no ELF32 program here
		}
		if err != nil {
			t.Fatal(err)
		}
		p.Wait()
		if (c.want == "") != (p.Kernel == "") || !strings.Contains(p.Kernel, c.want) {
			t.Errorf("%s: Kernel %q, want %q", c.path, p.Kernel, c.want)
		}
	}
}

// TestEngineConcurrent: a zero Engine used by several goroutines at once,
// from its first Spawn (which makes its switch), with binfmt rules
// registered meanwhile: every start runs and is waited for. .ci/run runs
// it under the race detector too, which is what sees a lazy
// initialisation made twice.
func TestEngineConcurrent(t *testing.T) {
	e := &uexec.Engine{}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const workers, starts = 6, 15
	errs := make(chan error, workers*starts+1)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range starts {
				p, err := e.Spawn(ctx, &uexec.SpawnRequest{Path: "/bin/true", Argv: []string{"true"}, Files: []*os.File{nil, nil, os.Stderr}})
				if err != nil {
					errs <- fmt.Errorf("worker %d, start %d: %w", w, i, err)
					continue
				}
				if st, err := p.Wait(); err != nil || !st.Success() {
					errs <- fmt.Errorf("worker %d, start %d: %v, %v", w, i, st, err)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		r, err := binfmt.Parse(":uexec-concurrent:E::uexec-concurrent::/bin/sh:")
		if err == nil {
			err = e.Binfmt().Register(r)
		}
		if err != nil {
			errs <- fmt.Errorf("binfmt rule: %w", err)
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if ctx.Err() != nil {
		t.Fatalf("%d starts by %d goroutines did not end in 60 s", workers*starts, workers)
	}
}
