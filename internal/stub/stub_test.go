package stub

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestHeaders(t *testing.T) {
	f, err := elf.NewFile(bytes.NewReader(ELF()))
	if err != nil {
		t.Fatal(err)
	}
	if f.Type != elf.ET_EXEC || f.Machine != elf.EM_X86_64 || f.Entry != Entry {
		t.Errorf("type %v machine %v entry %#x", f.Type, f.Machine, f.Entry)
	}
	tests := []struct {
		name  string
		typ   elf.ProgType
		flags elf.ProgFlag
		vaddr uint64
	}{
		{"load", elf.PT_LOAD, elf.PF_R | elf.PF_X, Base},
		{"stack", elf.PT_GNU_STACK, elf.PF_R | elf.PF_W, 0},
	}
	if len(f.Progs) != len(tests) {
		t.Fatalf("%d program headers, want %d", len(f.Progs), len(tests))
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := f.Progs[i]
			if p.Type != tt.typ || p.Flags != tt.flags || p.Vaddr != tt.vaddr {
				t.Errorf("got %v %v %#x", p.Type, p.Flags, p.Vaddr)
			}
		})
	}
	if got := ELF()[SyscallAddr-Base:][:2]; !bytes.Equal(got, []byte{0x0f, 0x05}) {
		t.Errorf("bytes at SyscallAddr: % x, want 0f 05", got)
	}
}

// TestListing disassembles the code with objdump and checks each
// instruction's mnemonic against the hand-written listing.
func TestListing(t *testing.T) {
	objdump, err := exec.LookPath("objdump")
	if err != nil {
		t.Skip("objdump not installed")
	}
	dir := t.TempDir()
	code, _ := layout()
	bin := filepath.Join(dir, "code.bin")
	if err := os.WriteFile(bin, code, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(objdump, "-D", "-b", "binary", "-m", "i386:x86-64", "-M", "intel", bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, line := range strings.Split(string(out), "\n") {
		// "   0:\tb8 27 00 00 00       \tmov    eax,0x27"
		parts := strings.Split(line, "\t")
		if len(parts) >= 3 && strings.HasSuffix(strings.TrimSpace(parts[0]), ":") {
			got = append(got, strings.Fields(parts[2])[0])
		}
	}
	if len(got) != len(program) {
		t.Fatalf("objdump found %d instructions, listing has %d:\n%s", len(got), len(program), out)
	}
	for i, in := range program {
		if want := strings.Fields(in.asm)[0]; got[i] != want {
			t.Errorf("instruction %d: objdump says %q, listing %q", i, got[i], want)
		}
	}
}

// TestRunUntraced runs the stub without a tracer: it must stop itself with
// SIGSTOP and, once continued, exit with status 127.
func TestRunUntraced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stub")
	if err := os.WriteFile(path, ELF(), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(cmd.Process.Pid, &ws, syscall.WUNTRACED, nil); err != nil {
		t.Fatal(err)
	}
	if !ws.Stopped() || ws.StopSignal() != syscall.SIGSTOP {
		t.Fatalf("status %#x, want stopped by SIGSTOP", ws)
	}
	if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if cmd.ProcessState.ExitCode() != 127 {
		t.Fatalf("exit %v, want status 127", err)
	}
}
