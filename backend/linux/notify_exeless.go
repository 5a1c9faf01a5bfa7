//go:build linux && amd64

package linux

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// A caller whose capabilities let the stub set /proc/PID/exe may still lose
// them at its exec: root's exec gives none under SECBIT_NOROOT, and procfs
// shows no securebits. Its stub, at its exec event, then has neither
// CAP_SYS_ADMIN nor CAP_CHECKPOINT_RESTORE, and the image it would build
// would name the stub in /proc/PID/exe (a program that execs itself through
// it would run the stub). There, before any of the stub's code runs, the
// stub makes the caller's own exec instead: the kernel's, exact where the
// plan is its own, for the stub's exec changed nothing that the caller's
// would not have (capabilities, mask, dispositions and descriptors are what
// one exec of a file without set-id bits or file capabilities leaves, and a
// second one computes the same from them).

// noExeCaps reports whether process pid has neither CAP_SYS_ADMIN nor
// CAP_CHECKPOINT_RESTORE in its effective set (capget: no procfs read).
func noExeCaps(pid int) bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3, Pid: int32(pid)}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	eff := uint64(data[0].Effective) | uint64(data[1].Effective)<<32
	return eff&(1<<unix.CAP_SYS_ADMIN) == 0 && eff&(1<<unix.CAP_CHECKPOINT_RESTORE) == 0
}

// execFromStub makes the stub tid, stopped at its exec event with
// registers regs, make the call of s instead (execve, or execveat from the
// working directory with its flags), with its argv and envp as the kernel
// left them on the stub's stack and its path written below them; first it
// closes the descriptors handed to it (fds). It reports whether the exec
// was made (tid is then at the program's exec event); where it failed, the
// stub has its registers back and runs its plan, and err says why.
func (tr *Tree) execFromStub(tid int, regs unix.PtraceRegs, s *stubCall, fds []int, held *[]syscall.Signal) (bool, error) {
	sysAddr := stubSyscall()
	if sysAddr == 0 {
		return false, fmt.Errorf("no system call instruction found in the stub")
	}
	// Out of the stub's exec first: at its exec event the call's result
	// is yet to be stored in rax, over what a call made from there would
	// find. A single step stops at the exec's exit (a SIGTRAP the kernel
	// reports there, with si_code TRAP_BRKPT), the result stored, before
	// any of the stub's instructions.
	if err := unix.PtraceSingleStep(tid); err != nil {
		return false, err
	}
	for {
		var ws unix.WaitStatus
		if _, err := tr.wait4(tid, &ws, unix.WALL); err != nil {
			return false, err
		}
		if ws.Exited() || ws.Signaled() {
			return false, unix.ESRCH
		}
		if ws.StopSignal() == syscall.SIGTRAP {
			break
		}
		if !isEventStop(ws) {
			*held = append(*held, ws.StopSignal())
		}
		if err := unix.PtraceSingleStep(tid); err != nil {
			return false, err
		}
	}
	if len(fds) > 0 {
		if err := tr.closeIn(tid, sysAddr, regs, fds, held); err != nil {
			unix.PtraceSetRegs(tid, &regs)
			return false, err
		}
	}
	var argc uint64
	if err := peek(tid, regs.Rsp, &argc); err != nil {
		return false, err
	}
	argv := regs.Rsp + 8
	envp := argv + 8*(argc+1)
	path := append([]byte(s.path), 0)
	at := (regs.Rsp - 4096 - uint64(len(path))) &^ 15
	if n, err := unix.ProcessVMWritev(tid, []unix.Iovec{{Base: &path[0], Len: uint64(len(path))}},
		[]unix.RemoteIovec{{Base: uintptr(at), Len: len(path)}}, 0); err != nil || n != len(path) {
		return false, fmt.Errorf("writing the path below the stub's stack: %v", err)
	}
	r := regs
	r.Rip, r.Orig_rax = sysAddr, ^uint64(0)
	r.Rax, r.Rdi, r.Rsi, r.Rdx, r.R10, r.R8 = unix.SYS_EXECVEAT, atFDCWD, at, argv, envp, s.flags
	r.R9 = notifyMarker  // the tree's filter lets it through
	r.Eflags |= eflagsTF // a failed exec traps at the next instruction
	if err := unix.PtraceSetRegs(tid, &r); err != nil {
		return false, err
	}
	_, errno, err := tr.contToExec(tid, tid, held)
	if err == nil && errno != 0 {
		unix.PtraceSetRegs(tid, &regs)
		err = fmt.Errorf("the exec from the stub: %w", errno)
	}
	return err == nil, err
}

// contToExec continues tracee tid, which is to make an exec with the trap
// flag set, until the exec's event (errno 0; the tracee is then the thread
// group's leader, tgid, whose pid it returns) or the trap after the call,
// which failed with errno. Signals that stop it meanwhile are added to
// held.
func (tr *Tree) contToExec(tid, tgid int, held *[]syscall.Signal) (int, unix.Errno, error) {
	for {
		if err := unix.PtraceCont(tid, 0); err != nil {
			return tid, 0, err
		}
		var ws unix.WaitStatus
		if _, err := tr.wait4(tid, &ws, unix.WALL); err == unix.ECHILD && tgid != tid {
			tid = tgid // a thread that exec'd took the leader's pid
			if _, err = tr.wait4(tid, &ws, unix.WALL); err != nil {
				return tid, 0, err
			}
		} else if err != nil {
			return tid, 0, err
		}
		switch {
		case ws.Exited() || ws.Signaled():
			return tid, 0, unix.ESRCH
		case ws.StopSignal() == syscall.SIGTRAP && ws.TrapCause() == unix.PTRACE_EVENT_EXEC:
			return tid, 0, nil
		case ws.StopSignal() == syscall.SIGTRAP && singleStepped(tid):
			var now unix.PtraceRegs
			if err := unix.PtraceGetRegs(tid, &now); err != nil {
				return tid, 0, err
			}
			return tid, unix.Errno(-int64(now.Rax)), nil
		case !isEventStop(ws):
			*held = append(*held, ws.StopSignal())
		}
	}
}

// peek reads the word at addr of tracee tid.
func peek(tid int, addr uint64, v *uint64) error {
	var b [8]byte
	if _, err := unix.PtracePeekData(tid, uintptr(addr), b[:]); err != nil {
		return err
	}
	*v = binary.LittleEndian.Uint64(b[:])
	return nil
}

// stubSyscall is the address of the stub's first `syscall` instruction
// (its entry's mmap), 0 if none is found.
var stubSyscall = sync.OnceValue(func() uint64 { return firstSyscall(planStub.elf()) })

// firstSyscall returns the address of the first `syscall` (0f 05) from the
// entry of the ELF executable b (the stub: position-dependent, and no
// instruction before that one holds those bytes, which a test checks
// against its listing), 0 if none.
func firstSyscall(b []byte) uint64 {
	le := binary.LittleEndian
	if len(b) < 64 || string(b[:4]) != "\x7fELF" {
		return 0
	}
	entry, phoff := le.Uint64(b[24:]), le.Uint64(b[32:])
	phentsize, phnum := uint64(le.Uint16(b[54:])), uint64(le.Uint16(b[56:]))
	for i := uint64(0); i < phnum; i++ {
		ph := phoff + i*phentsize
		if ph+56 > uint64(len(b)) || le.Uint32(b[ph:]) != 1 { // PT_LOAD
			continue
		}
		off, vaddr, filesz := le.Uint64(b[ph+8:]), le.Uint64(b[ph+16:]), le.Uint64(b[ph+32:])
		if entry < vaddr || entry >= vaddr+filesz || off+filesz > uint64(len(b)) {
			continue
		}
		text := b[off+entry-vaddr : off+filesz]
		for j := 0; j+1 < len(text) && j < 256; j++ {
			if text[j] == 0x0f && text[j+1] == 0x05 {
				return entry + uint64(j)
			}
		}
	}
	return 0
}

// errNotAgain: a call made through a descriptor or the caller's procfs
// (/proc/self/exe, /dev/fd/N) names other files once the stub runs.
var errNotAgain = errors.New("its path names the caller's descriptors or procfs, which are the stub's now")

// noRootNote is the log's note of such an exec.
const noRootNote = "exact by the kernel: the caller's exec leaves it without CAP_SYS_ADMIN and CAP_CHECKPOINT_RESTORE (securebits, SECBIT_NOROOT), so the stub could not make /proc/PID/exe the program's: the stub made the caller's exec instead"

// secbitNoRoot is SECBIT_NOROOT (include/uapi/linux/securebits.h).
const secbitNoRoot = 1 << 0

// ownExec makes the caller tid, stopped in its call with registers saved
// and signal mask mask, make its own call after all, by the kernel (marked
// for the tree's filter), with every signal blocked meanwhile and the
// descriptors handed to it (fds) closed first: a call whose stub could not
// set /proc/PID/exe (SECBIT_NOROOT) and could not make the call again
// either (errNotAgain). A failed exec returns its errno to the caller, as
// natively. It detaches from the caller (or what it became) either way.
func (tr *Tree) ownExec(tid int, saved unix.PtraceRegs, mask uint64, c *caller, call *stubCall, fds []int, held []syscall.Signal) (_ string, err error) {
	defer func() {
		unix.PtraceDetach(tid)
		resend(c.tgid, tid, held)
	}()
	sysAddr := saved.Rip - 2
	if err := tr.closeIn(tid, sysAddr, saved, fds, &held); err != nil {
		unix.PtraceSetRegs(tid, &saved)
		return "closing what was handed over", err
	}
	all := ^uint64(0)
	if err := ptraceSigmask(tid, false, &all); err != nil {
		unix.PtraceSetRegs(tid, &saved)
		return "ptrace(PTRACE_SETSIGMASK)", err
	}
	defer func() {
		if err != nil {
			ptraceSigmask(tid, false, &mask)
		}
	}()
	own := saved
	own.Rax, own.Rip, own.Orig_rax = saved.Orig_rax, sysAddr, ^uint64(0)
	own.R9 = notifyMarker
	own.Eflags |= eflagsTF
	if err := unix.PtraceSetRegs(tid, &own); err != nil {
		return "ptrace(PTRACE_SETREGS)", err
	}
	var errno unix.Errno
	tid, errno, err = tr.contToExec(tid, c.tgid, &held)
	switch {
	case err == unix.ESRCH:
		return "the caller died during its exec", err
	case err != nil:
		return "waiting for the caller's exec", err
	case errno != 0:
		// Its exec failed: the call returns the errno, with the
		// caller's own registers.
		back := saved
		back.Rax, back.Orig_rax = uint64(-int64(errno)), ^uint64(0)
		unix.PtraceSetRegs(tid, &back)
		return "the caller's own exec", errno
	}
	ptraceSigmask(tid, false, &mask)
	call.kernel = noRootOwnNote
	if call.atExec != nil {
		call.atExec()
	}
	return "", nil
}

// noRootOwnNote is the log's note of an exec ownExec made.
const noRootOwnNote = "exact by the kernel: the caller's exec leaves it without CAP_SYS_ADMIN and CAP_CHECKPOINT_RESTORE (securebits, SECBIT_NOROOT), and its path is its own procfs: it made its own exec"
