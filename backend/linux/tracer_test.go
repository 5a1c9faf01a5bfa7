//go:build linux && amd64

package linux

import "runtime"

func tracerThread() { runtime.LockOSThread() }
