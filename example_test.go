package uexec_test

import (
	"context"
	"fmt"
	"os"

	"github.com/uexec/uexec"
	"github.com/uexec/uexec/format/binfmt"
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
