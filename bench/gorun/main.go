// Command gorun runs its arguments with os/exec and exits with their
// status: the floor of any Go launcher (the Go runtime's start plus a fork
// and exec), which bench/run.sh compares `uexec run --once` with.
package main

import (
	"os"
	"os/exec"
)

func main() {
	cmd := exec.Command(os.Args[1], os.Args[2:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		if e, ok := err.(*exec.ExitError); ok {
			os.Exit(e.ExitCode())
		}
		os.Exit(127)
	}
}
