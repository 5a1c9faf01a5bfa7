//go:build linux && amd64

package kernelexec

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// testHookStopped, when set, runs once the program is at its exec stop.
var testHookStopped func(pid int)

// Snapshot starts opts.Path natively under ptrace, stops it at the first
// instruction of the new image and collects a Snap; then it kills and
// reaps the program. No process outlives the call, whatever happens,
// including cancellation of ctx (which kills the program and makes
// Snapshot return ctx.Err()).
func Snapshot(ctx context.Context, opts Options) (*Snap, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	type result struct {
		s   *Snap
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// The tracer is this thread; it is never unlocked, so it ends
		// with the goroutine and takes its personality with it.
		runtime.LockOSThread()
		s, err := snapshotLocked(ctx, opts)
		ch <- result{s, err}
	}()
	r := <-ch
	return r.s, r.err
}

func snapshotLocked(ctx context.Context, opts Options) (*Snap, error) {
	p, done, err := stoppedAtExec(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer done()
	if testHookStopped != nil {
		testHookStopped(p.pid)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s, err := SnapshotPid(p.pid)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return s, err
}

// SnapshotPid collects a Snap of pid, which must be stopped under ptrace.
//
// Preconditions: the caller runs on the tracer thread of pid (the locked
// OS thread that attached to it or forked it), and pid is in a
// ptrace-stop.
func SnapshotPid(pid int) (*Snap, error) {
	s := &Snap{Pid: pid}
	var r unix.PtraceRegs
	if err := getRegs(pid, &r); err != nil {
		return nil, os.NewSyscallError("ptrace(PTRACE_GETREGS)", fmt.Errorf("pid %d: %w", pid, err))
	}
	s.Regs = Regs{
		R15: r.R15, R14: r.R14, R13: r.R13, R12: r.R12, Rbp: r.Rbp, Rbx: r.Rbx, R11: r.R11, R10: r.R10,
		R9: r.R9, R8: r.R8, Rax: r.Rax, Rcx: r.Rcx, Rdx: r.Rdx, Rsi: r.Rsi, Rdi: r.Rdi,
		OrigRax: r.Orig_rax, Rip: r.Rip, Cs: r.Cs, Eflags: r.Eflags, Rsp: r.Rsp, Ss: r.Ss,
		FsBase: r.Fs_base, GsBase: r.Gs_base, Ds: r.Ds, Es: r.Es, Fs: r.Fs, Gs: r.Gs,
	}
	if err := getFPRegs(pid, &s.FPRegs); err != nil {
		return nil, os.NewSyscallError("ptrace(PTRACE_GETFPREGS)", fmt.Errorf("pid %d: %w", pid, err))
	}
	if err := getRseq(pid, &s.Rseq); err != nil {
		s.RseqErr = os.NewSyscallError("ptrace(PTRACE_GET_RSEQ_CONFIGURATION)", err).Error()
	}

	dir := "/proc/" + strconv.Itoa(pid) + "/"
	read := func(name string) ([]byte, error) {
		b, err := os.ReadFile(dir + name)
		if err != nil {
			return nil, fmt.Errorf("kernelexec: pid %d: %w", pid, err)
		}
		return b, nil
	}
	link := func(name string) (string, error) {
		l, err := os.Readlink(dir + name)
		if err != nil {
			return "", fmt.Errorf("kernelexec: pid %d: %w", pid, err)
		}
		return l, nil
	}
	b, err := read("maps")
	if err != nil {
		return nil, err
	}
	if s.Maps, err = ParseMaps(b); err != nil {
		return nil, err
	}
	if b, err = read("auxv"); err != nil {
		return nil, err
	}
	parse := ParseAuxv
	if s.Regs.Cs == user32CS {
		parse = ParseAuxv32 // a compat image: elf_addr_t is 32 bits
	}
	if s.Auxv, err = parse(b); err != nil {
		return nil, fmt.Errorf("pid %d: %w", pid, err)
	}
	if b, err = read("stat"); err != nil {
		return nil, err
	}
	if s.Stat, err = ParseStat(b); err != nil {
		return nil, fmt.Errorf("pid %d: %w", pid, err)
	}
	if b, err = read("comm"); err != nil {
		return nil, err
	}
	s.Comm = strings.TrimSuffix(string(b), "\n")
	if s.Cmdline, err = read("cmdline"); err != nil {
		return nil, err
	}
	if s.Environ, err = read("environ"); err != nil {
		return nil, err
	}
	if b, err = read("status"); err != nil {
		return nil, err
	}
	s.Status = ParseStatus(b)
	if b, err = read("personality"); err != nil {
		return nil, err
	}
	pers, err := strconv.ParseUint(strings.TrimSpace(string(b)), 16, 32)
	if err != nil {
		return nil, fmt.Errorf("kernelexec: pid %d: personality %q: %w", pid, b, err)
	}
	s.Personality = uint32(pers)
	if b, err = read("limits"); err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 0 {
		s.Limits = lines[1:]
	}
	if s.Exe, err = link("exe"); err != nil {
		return nil, err
	}
	if s.Cwd, err = link("cwd"); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(dir + "fd")
	if err != nil {
		return nil, fmt.Errorf("kernelexec: pid %d: %w", pid, err)
	}
	s.Fds = make(map[int]string, len(ents))
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		l, err := link(filepath.Join("fd", e.Name()))
		if err != nil {
			return nil, err
		}
		s.Fds[n] = l
	}

	// The stack: from rsp to the end of the mapping holding it.
	m, ok := s.Mapping(s.Regs.Rsp)
	if !ok {
		return nil, fmt.Errorf("kernelexec: pid %d: rsp %#x is not in any mapping", pid, s.Regs.Rsp)
	}
	mem, err := os.Open(dir + "mem")
	if err != nil {
		return nil, fmt.Errorf("kernelexec: pid %d: %w", pid, err)
	}
	defer mem.Close()
	s.StackAddr = s.Regs.Rsp
	s.Stack = make([]byte, m.End-s.Regs.Rsp)
	if _, err := mem.ReadAt(s.Stack, int64(s.StackAddr)); err != nil {
		return nil, fmt.Errorf("kernelexec: pid %d: reading the stack [%#x, %#x): %w", pid, s.StackAddr, m.End, err)
	}
	return s, nil
}
