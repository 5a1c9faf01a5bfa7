package uexec_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/uexec/uexec"
	"github.com/uexec/uexec/format/binfmt"
	"github.com/uexec/uexec/segvguard"
)

// Start /bin/echo with uexec's exec engine and wait for it, as with os/exec.
func ExampleEngine_Spawn() {
	e := uexec.NewEngine()
	p, err := e.Spawn(context.Background(), &uexec.SpawnRequest{
		Path:  "/bin/echo",
		Argv:  []string{"echo", "hello from uexec"},
		Env:   []string{"LANG=C"},
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	st, err := p.Wait()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("exit status", st.ExitCode())
	// Output:
	// hello from uexec
	// exit status 0
}

// Hand files named *.greeting to /bin/echo, as a binfmt_misc rule would,
// without root and without binfmt_misc.
func ExampleEngine_Binfmt() {
	dir, err := os.MkdirTemp("", "uexec-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(dir+"/hello.greeting", nil, 0o755); err != nil {
		fmt.Println(err)
		return
	}
	e := uexec.NewEngine()
	r, err := binfmt.Parse(":greeting:E::greeting::/bin/echo:")
	if err == nil {
		err = e.Binfmt().Register(r)
	}
	if err != nil {
		fmt.Println(err)
		return
	}
	p, err := e.Spawn(context.Background(), &uexec.SpawnRequest{
		Path: "hello.greeting", Argv: []string{"hello.greeting", "world"}, Dir: dir,
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	p.Wait()
	// Output:
	// hello.greeting world
}

// Run a shell script with every exec of its process tree built by uexec
// (Build: without it, the kernel does each exec whose plan is its own, as
// `uexec run` without --build), and see each exec and each end as
// `uexec run --log-execs` logs them. As root: an ordinary user's uexec
// cannot make /proc/PID/exe the program's, and leaves every exec to the
// kernel.
func ExampleEngine_Spawn_tree() {
	var mu sync.Mutex
	var events []string
	e := uexec.NewEngine()
	p, err := e.Spawn(context.Background(), &uexec.SpawnRequest{
		Path:  "/bin/sh",
		Argv:  []string{"sh", "-c", "/bin/true; /bin/echo tree; exit 3"},
		Env:   []string{"LANG=C"},
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
		Tree:  true,
		Build: true,
		OnExec: func(ev uexec.ExecEvent) {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, fmt.Sprintf("exec %s by %s, err %v", strings.Join(ev.Argv, " "), ev.By, ev.Err))
		},
		OnExit: func(ev uexec.ExitEvent) {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, fmt.Sprintf("exit %s: %d", ev.Comm, ev.Status.ExitStatus()))
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ws, err := p.WaitStatus() // the first program's, once the whole tree is done
	if err != nil {
		fmt.Println(err)
		return
	}
	mu.Lock()
	defer mu.Unlock()
	for _, ev := range events {
		fmt.Println(ev)
	}
	fmt.Println("exit status", ws.ExitStatus())
	// Output:
	// tree
	// exec sh -c /bin/true; /bin/echo tree; exit 3 by uexec, err <nil>
	// exec /bin/true by uexec, err <nil>
	// exit true: 0
	// exec /bin/echo tree by uexec, err <nil>
	// exit echo: 0
	// exit sh: 3
	// exit status 3
}

// Find programs under an emulation root first, as NetBSD's /emul/linux:
// /bin/greet is DIR/bin/greet (a copy of echo), its dynamic linker the
// real one.
func ExampleSpawnRequest_emulRoot() {
	dir, err := os.MkdirTemp("", "uexec-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	os.Mkdir(dir+"/bin", 0o755)
	echo, err := os.ReadFile("/bin/echo")
	if err == nil {
		err = os.WriteFile(dir+"/bin/greet", echo, 0o755)
	}
	if err != nil {
		fmt.Println(err)
		return
	}
	root, err := filepath.EvalSymlinks(dir) // absolute, without symlinks
	if err != nil {
		fmt.Println(err)
		return
	}
	p, err := uexec.NewEngine().Spawn(context.Background(), &uexec.SpawnRequest{
		Path: "/bin/greet", Argv: []string{"greet", "greetings from the root"}, EmulRoot: root,
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	p.Wait()
	// Output:
	// greetings from the root
}

// Refuse a program that keeps crashing, as NetBSD's PaX Segvguard does:
// after two crashes within 60 seconds, sh is suspended for 60 seconds.
func ExampleEngine_Segvguard() {
	dir, err := os.MkdirTemp("", "uexec-example") // for a core file, if one is written
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	e := uexec.NewEngine()
	g := e.Segvguard(segvguard.Config{MaxCrashes: 2, ExpiryTimeout: 60, SuspendTimeout: 60})
	g.Log = func(_ segvguard.Level, msg string) { fmt.Println(msg) }
	crash := &uexec.SpawnRequest{Path: "/bin/sh", Argv: []string{"sh", "-c", "kill -SEGV $$"}, Dir: dir,
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr}}
	for i := 0; i < 2; i++ {
		p, err := e.Spawn(context.Background(), crash)
		if err != nil {
			fmt.Println(err)
			return
		}
		ws, _ := p.WaitStatus()
		fmt.Println("died of", ws.Signal())
	}
	_, err = e.Spawn(context.Background(), crash)
	fmt.Println("again:", errors.Is(err, syscall.EPERM))
	// Output:
	// died of segmentation fault
	// PaX Segvguard: [sh] Suspending execution for 60 seconds after 2 crashes.
	// died of segmentation fault
	// PaX Segvguard: [/bin/sh] Preventing execution due to repeated segfaults.
	// again: true
}

// Replace this process with a program, as execve does (uexec run --once):
// the program keeps this process's pid. ExecInPlace returns only if the
// exec failed. (Not run by go test: it would replace the test.)
func ExampleEngine_ExecInPlace() {
	e := uexec.NewEngine()
	req := &uexec.SpawnRequest{Path: "/bin/echo", Argv: []string{"echo", "in place"}, Env: os.Environ()}
	plan, err := e.Plan(req)
	if err != nil {
		fmt.Println(err) // the errno execve would return
		return
	}
	defer plan.Close()
	err = e.ExecInPlace(plan, req)
	var se *uexec.StartError
	if errors.As(err, &se) && se.Signal != 0 {
		os.Exit(128 + int(se.Signal)) // past the point of no return: the process is lost
	}
	fmt.Println(err)
}
