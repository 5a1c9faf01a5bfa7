package planstub

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uexec/uexec/internal/testenv"
	"github.com/uexec/uexec/internal/wire"
)

// TestStubBuild rebuilds the stub from stub.c and checks that the committed
// stub.elf is exactly that build, and stub.lst its listing: the binary uexec
// runs is the source beside it.
func TestStubBuild(t *testing.T) {
	testenv.NeedTool(t, "gcc")
	testenv.NeedTool(t, "objdump")
	dir := t.TempDir()
	out := filepath.Join(dir, "stub.elf")
	if b, err := exec.Command("csrc/build.sh", out).CombinedOutput(); err != nil {
		t.Fatalf("build.sh: %v\n%s", err, b)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, ELF()) {
		t.Fatalf("stub.elf is not the build of stub.c (%d bytes built, %d committed): run go generate ./internal/planstub", len(got), len(ELF()))
	}
	lst, err := exec.Command("objdump", "-d", "--no-show-raw-insn", "stub.elf").Output()
	if err != nil {
		t.Fatal(err)
	}
	if i := bytes.Index(lst, []byte("Disassembly")); i >= 0 {
		lst = lst[i:]
	}
	want, err := os.ReadFile("stub.lst")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(lst, want) {
		t.Fatalf("stub.lst is not the listing of stub.elf: run go generate ./internal/planstub")
	}
}

// TestLayout checks that layout.h, the Go constants and the ELF agree.
func TestLayout(t *testing.T) {
	h, err := os.ReadFile("csrc/layout.h")
	if err != nil {
		t.Fatal(err)
	}
	defs := map[string]uint64{}
	for _, m := range regexp.MustCompile(`#define (\w+)\s+(0x[0-9a-fA-F]+|\d+)`).FindAllSubmatch(h, -1) {
		v, err := strconv.ParseUint(string(m[2]), 0, 64)
		if err != nil {
			t.Fatal(err)
		}
		defs[string(m[1])] = v
	}
	for name, want := range map[string]uint64{
		"RESERVED_START": ReservedStart, "RESERVED_END": ReservedEnd, "STUB_BASE": Base,
		"RUN_ADDR": RunAddr, "SCRATCH_LEN": ScratchLen, "PLAN_ADDR": PlanAddr, "PLAN_OFFSET": PlanOffset, "PIPE_PLAN_MAX": PipePlanMax,
		"PLAN_MAGIC": wire.Magic, "PLAN_VERSION": wire.Version, "NREGS": wire.NRegs,
	} {
		if defs[name] != want {
			t.Errorf("layout.h %s = %#x, Go has %#x", name, defs[name], want)
		}
	}
	f, err := elf.NewFile(bytes.NewReader(ELF()))
	if err != nil {
		t.Fatal(err)
	}
	var end uint64
	loads := 0
	for i, p := range f.Progs {
		if p.Type != elf.PT_LOAD {
			continue
		}
		// _start copies the first program header's p_filesz bytes: the
		// whole stub, data included, is that one segment.
		if loads++; i != 0 || p.Off != 0 || p.Filesz != p.Memsz {
			t.Errorf("segment %d (%#x+%#x of %#x in the file): the stub must be one PT_LOAD, the first program header, from the file's start, with no .bss", i, p.Off, p.Filesz, p.Memsz)
		}
		if p.Vaddr < Base || p.Vaddr+p.Memsz > RunAddr {
			t.Errorf("segment %#x+%#x outside [Base, RunAddr)", p.Vaddr, p.Memsz)
		}
		end = max(end, p.Vaddr+p.Memsz)
		if p.Flags&elf.PF_W != 0 && p.Flags&elf.PF_X != 0 {
			t.Errorf("segment %#x is writable and executable", p.Vaddr)
		}
	}
	if loads != 1 {
		t.Errorf("%d PT_LOAD segments, want 1", loads)
	}
	// The stub's data and stack, and its copy after them.
	if ScratchLen+end-Base > PlanAddr-RunAddr {
		t.Errorf("the stub (%#x bytes) does not fit below the plan", end-Base)
	}
	if len(ELF()) > PlanOffset {
		t.Errorf("the stub's file (%d bytes) runs past PlanOffset %#x, where an appended plan starts", len(ELF()), PlanOffset)
	}
}

// TestRunByHand: the stub without a plan changes nothing and exits 127,
// run by its name, as its launcher's interpreter, or exec'd by descriptor
// (AT_EXECFN /dev/fd/N, where a plan would follow it at PlanOffset); a
// copy with a broken plan appended
// is killed by SIGSEGV, as an exec failing past its point of no return.
func TestRunByHand(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) *os.File {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	plain := write("stub", ELF())
	launcher := write("launch", Launcher(plain.Name()))
	broken := write("broken", append(append(append([]byte{}, ELF()...), make([]byte, PlanOffset-len(ELF()))...), []byte("not a plan, long enough to be read as one: 0123456789abcdef")...))
	for _, tc := range []struct {
		name string
		cmd  *exec.Cmd
		want string
	}{
		{"by name", exec.Command(plain.Name()), "exit status 127"},
		{"by its launcher", exec.Command(launcher.Name()), "exit status 127"},
		{"by descriptor", exec.Command("/dev/fd/3"), "exit status 127"},
		{"by descriptor, broken plan", exec.Command("/dev/fd/3"), "signal: segmentation fault"},
	} {
		if tc.cmd.Path == "/dev/fd/3" {
			tc.cmd.ExtraFiles = []*os.File{plain}
			if strings.Contains(tc.name, "broken") {
				tc.cmd.ExtraFiles = []*os.File{broken}
			}
		}
		err := tc.cmd.Run()
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.want)
		}
	}
}

// TestPlanInPipe: a pipe that ends before the size its plan's header
// gives, a header claiming more than PipePlanMax, garbage, and a pipe
// still empty (non-blocking, its writing end open) kill the stub with
// SIGSEGV at once: no hang, nothing run, the stub exec'd as itself or as
// its launcher's interpreter. (A whole plan on a pipe is what every Start
// of a plan that fits one hands over: the backend's tests.)
func TestPlanInPipe(t *testing.T) {
	dir := t.TempDir()
	stub, launcher := filepath.Join(dir, "stub"), filepath.Join(dir, "launch")
	if err := os.WriteFile(stub, ELF(), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(launcher, Launcher(stub), 0o755); err != nil {
		t.Fatal(err)
	}
	hdr := func(size uint64) []byte {
		var b []byte
		for _, v := range []uint32{wire.Magic, wire.Version, 0, 80} {
			b = binary.LittleEndian.AppendUint32(b, v)
		}
		for _, v := range []uint64{^uint64(0), 48, 0, size} {
			b = binary.LittleEndian.AppendUint64(b, v)
		}
		return b
	}
	for _, tc := range []struct {
		name     string
		contents []byte
		keepOpen bool
		launched bool
	}{
		{"short", hdr(1000), false, false},
		{"too big", append(hdr(PipePlanMax+1), make([]byte, 100)...), false, false},
		{"garbage", []byte("not a plan"), false, false},
		{"empty, writer open", nil, true, false},
		{"garbage, by the launcher", []byte("not a plan"), false, true},
		{"empty, writer open, by the launcher", nil, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p [2]int
			if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
				t.Fatal(err)
			}
			r, w := os.NewFile(uintptr(p[0]), "r"), os.NewFile(uintptr(p[1]), "w")
			defer r.Close()
			defer w.Close()
			if _, err := w.Write(tc.contents); err != nil {
				t.Fatal(err)
			}
			if !tc.keepOpen {
				w.Close()
			}
			path := stub
			if tc.launched {
				path = launcher
			}
			cmd := exec.Command(path, "3")
			cmd.ExtraFiles = []*os.File{r}
			done := make(chan error, 1)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err == nil || err.Error() != "signal: segmentation fault" {
					t.Errorf("%v, want signal: segmentation fault", err)
				}
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				t.Fatal("the stub still runs after 10 s, reading its pipe")
			}
		})
	}
}
