//go:build !(linux && amd64)

package kernelexec

import (
	"context"
	"errors"
)

// Snapshot needs Linux on x86-64.
func Snapshot(ctx context.Context, opts Options) (*Snap, error) { return nil, errors.ErrUnsupported }

// SnapshotPid needs Linux on x86-64.
func SnapshotPid(pid int) (*Snap, error) { return nil, errors.ErrUnsupported }

// Run needs Linux on x86-64.
func Run(ctx context.Context, opts Options) (stdout, stderr []byte, status int, err error) {
	return nil, nil, 0, errors.ErrUnsupported
}

// RunProbe needs Linux on x86-64.
func RunProbe(ctx context.Context, opts Options) (*ProbeOutput, error) {
	return nil, errors.ErrUnsupported
}

// Verdict needs Linux on x86-64.
func Verdict(ctx context.Context, opts Options) ([]Mapping, error) { return nil, errors.ErrUnsupported }
