package uexec_test

import (
	"context"
	"fmt"
	"os"

	"github.com/uexec/uexec"
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
