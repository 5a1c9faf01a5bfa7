//go:build linux && amd64

package tracee

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/internal/stub"
	"github.com/uexec/uexec/internal/testenv"
)

// TestInject starts the stub, injects system calls and checks their
// results and errors, then kills it.
func TestInject(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stub")
	if err := os.WriteFile(path, stub.ELF(), 0o755); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		tr, err := Start(&Options{Path: path, Argv: []string{"stub"}, Files: []uintptr{0, 1, 2}})
		if err != nil {
			if testenv.RequireAll() {
				t.Errorf("ptrace: %v", err)
			} else {
				t.Logf("skipping, ptrace: %v", err)
			}
			return
		}
		defer tr.Kill()
		tr.SetSyscallSite(stub.SyscallAddr)
		tests := []struct {
			name  string
			nr    uint64
			args  []uint64
			want  uint64
			errno error
		}{
			{"getpid", unix.SYS_GETPID, nil, uint64(tr.Pid), nil},
			{"close", unix.SYS_CLOSE, []uint64{999}, 0, unix.EBADF},
			{"munmap", unix.SYS_MUNMAP, []uint64{1, 4096}, 0, unix.EINVAL},
		}
		for _, tt := range tests {
			got, err := tr.Syscall(tt.name, tt.nr, tt.args...)
			if tt.errno != nil {
				if !errors.Is(err, tt.errno) || !strings.Contains(err.Error(), "pid ") {
					t.Errorf("%s: err %v, want %v naming the pid", tt.name, err, tt.errno)
				}
				continue
			}
			if err != nil || got != tt.want {
				t.Errorf("%s = %d, %v; want %d", tt.name, got, err, tt.want)
			}
		}
		// Memory: write into the stack and read it back.
		addr := tr.Regs.Rsp - 64
		if err := tr.WriteMem(addr, []byte("uexec")); err != nil {
			t.Error(err)
			return
		}
		b := make([]byte, 5)
		if err := tr.ReadMem(addr, b); err != nil || string(b) != "uexec" {
			t.Errorf("read back %q, %v", b, err)
		}
		// /proc/PID/mem writes ignore the protection, as exec's do.
		if err := tr.WriteMem(stub.SyscallAddr+2, []byte{0x90}); err != nil {
			t.Errorf("write to the read-only code page: %v", err)
		}
	}()
	<-done
}
