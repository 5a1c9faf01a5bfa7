//go:build !(linux && amd64)

package linux

import (
	"errors"
	"os"

	"github.com/uexec/uexec/execsw"
)

// Options say how Start runs a plan.
type Options struct{}

// Process is a program started by Start.
type Process struct{ Pid int }

// Wait is not implemented on this platform.
func (p *Process) Wait() (*os.ProcessState, error) { return nil, errors.ErrUnsupported }

// Signal is not implemented on this platform.
func (p *Process) Signal(os.Signal) error { return errors.ErrUnsupported }

// Start needs Linux on x86-64.
func Start(plan *execsw.Plan, opts *Options) (*Process, error) { return nil, errors.ErrUnsupported }

// ServeNotify needs Linux on x86-64.
func ServeNotify() int { return 1 }

// TreeNoNewPrivs needs Linux on x86-64.
func TreeNoNewPrivs() bool { return false }
