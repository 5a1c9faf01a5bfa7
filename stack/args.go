package stack

import (
	"fmt"
	"strings"

	"github.com/uexec/uexec/vm"
	"golang.org/x/sys/unix"
)

// Linux fs/exec.c bprm_stack_limits constants.
const (
	stkLim = 8 << 20        // _STK_LIM
	argMax = 32 * 4096      // ARG_MAX: the floor of the budget
	capLim = stkLim / 4 * 3 // 6 MiB: the ceiling of the budget
	// ptrSz is sizeof(void *) of the kernel: pointers are charged 8 bytes
	// also for a compat image.
	ptrSz = 8
)

// RlimInfinity is RLIM_INFINITY, an unlimited RLIMIT_STACK.
const RlimInfinity = ^uint64(0)

// ArgLimit returns the byte budget for argument and environment strings and
// their pointers for an RLIMIT_STACK soft limit (Linux bprm_stack_limits):
// a quarter of the limit, at most 6 MiB and at least 128 KiB.
func ArgLimit(rlimitStack uint64) uint64 {
	return max(min(capLim, rlimitStack/4), argMax)
}

// NewArgs collects argv, envp and the exec'd file name under Linux's limits
// (fs/exec.c do_execveat_common): count the strings, reserve the pointer
// vectors out of the budget ArgLimit gives, then copy the file name, the
// environment and the arguments, each string at most MaxArgStrLen bytes with
// its NUL. An empty argv gets "" as argv[0] as Linux 5.18 and later do.
// The new stack those strings are copied into may not grow beyond its first
// page past rlimitStack either.
// Every error wraps unix.E2BIG, except a string holding a NUL byte, which no
// execve caller can pass (EINVAL, as Go's syscall package answers).
func NewArgs(argv, envp []string, execfn string, rlimitStack uint64) (*Args, error) {
	if len(argv) > MaxArgs {
		return nil, fmt.Errorf("%d arguments, more than %d: %w", len(argv), MaxArgs, unix.E2BIG)
	}
	if len(envp) > MaxArgs {
		return nil, fmt.Errorf("%d environment strings, more than %d: %w", len(envp), MaxArgs, unix.E2BIG)
	}
	limit := ArgLimit(rlimitStack)
	// The pointers of argv (at least one, for the "" argv[0] an empty
	// argv gets) and envp come out of the same budget.
	ptrs := uint64(max(len(argv), 1)+len(envp)) * ptrSz
	if limit <= ptrs {
		return nil, fmt.Errorf("%d argument and environment pointers need %d bytes, more than the %d of RLIMIT_STACK %s/4: %w",
			max(len(argv), 1)+len(envp), ptrs, limit, rlimString(rlimitStack), unix.E2BIG)
	}
	a := &Args{avail: int64(limit - ptrs), rlim: rlimitStack, used: ptrSz, peak: ptrSz}
	// Linux copies the file name first, then the environment and the
	// arguments each from last to first; the first failure wins.
	if err := a.take("file name", -1, execfn); err != nil {
		return nil, err
	}
	for i := len(envp) - 1; i >= 0; i-- {
		if err := a.take("environment string", i, envp[i]); err != nil {
			return nil, err
		}
	}
	for i := len(argv) - 1; i >= 0; i-- {
		if err := a.take("argument", i, argv[i]); err != nil {
			return nil, err
		}
	}
	// The slices are kept, not copied: an exec's strings are the
	// caller's until the exec is done with them.
	a.ExecFn = execfn
	a.Envp = envp
	a.Argv = argv
	if len(argv) == 0 {
		// Linux 5.18 fs/exec.c: "" becomes argv[0] after the strings are
		// copied, so it is checked against what is left.
		if err := a.take("empty argv[0]", -1, ""); err != nil {
			return nil, err
		}
		a.Argv = []string{""}
	}
	return a, nil
}

// take charges s to the budget (copy_strings, copy_string_kernel).
func (a *Args) take(what string, i int, s string) error {
	// The name is only for errors: formatting it for every string would
	// cost an allocation each.
	n := int64(len(s)) + 1
	peak := max(a.peak, a.used+uint64(n))
	size := (peak + vm.PageSize - 1) &^ (vm.PageSize - 1)
	if strings.IndexByte(s, 0) >= 0 || n > MaxArgStrLen || n > a.avail || (size > vm.PageSize && size > a.rlim) {
		name := what
		if i >= 0 {
			name = fmt.Sprintf("%s %d", what, i)
		}
		return a.takeNamed(name, s)
	}
	a.avail -= n
	a.used += uint64(n)
	a.peak = peak
	return nil
}

// takeNamed is take's slow path: errors, and a new peak of stack use.
func (a *Args) takeNamed(name, s string) error {
	if strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("%s contains a NUL byte: %w", name, unix.EINVAL)
	}
	n := int64(len(s)) + 1
	if n > MaxArgStrLen {
		return fmt.Errorf("%s is %d bytes, more than %d: %w", name, n, MaxArgStrLen, unix.E2BIG)
	}
	if n > a.avail {
		return fmt.Errorf("%s of %d bytes does not fit in the %d bytes left for arguments and environment: %w",
			name, n, a.avail, unix.E2BIG)
	}
	a.avail -= n
	a.used += uint64(n)
	if a.used > a.peak {
		a.peak = a.used
		// The strings are copied into the new stack, which starts as one
		// page and grows like any stack: beyond the first page, not past
		// RLIMIT_STACK (mm/mmap.c acct_stack_growth; copy_strings turns
		// the failure into E2BIG). Only a limit below 128 KiB can bite.
		if size := (a.peak + vm.PageSize - 1) &^ (vm.PageSize - 1); size > vm.PageSize && size > a.rlim {
			return fmt.Errorf("%s needs %d bytes of stack, more than RLIMIT_STACK %d: %w", name, size, a.rlim, unix.E2BIG)
		}
	}
	return nil
}

// Avail returns how many bytes of string budget are left.
func (a *Args) Avail() int64 { return a.avail }

// StringBytes returns the bytes the strings take on the stack: every argv,
// envp and file name string with its NUL.
func (a *Args) StringBytes() uint64 {
	n := uint64(len(a.ExecFn)) + 1
	for _, s := range a.Argv {
		n += uint64(len(s)) + 1
	}
	for _, s := range a.Envp {
		n += uint64(len(s)) + 1
	}
	return n
}

// Rewrite applies a #! rewrite (Linux fs/binfmt_script.c load_script): drop
// argv[0], whose bytes return to the budget (remove_arg_zero), then prepend
// the script path, the optional argument and the interpreter, so that argv
// becomes [interp, (arg), script, argv[1:]...]. The pointer budget is not
// recomputed, as in Linux: only the strings are charged. It fails with E2BIG
// when a string is longer than MaxArgStrLen or the budget runs out; a is
// then unusable, as the kernel's bprm is.
func (a *Args) Rewrite(interp, arg string, hasArg bool, script string) error {
	a.RemoveArgZero()
	if err := a.Push("script name", script); err != nil {
		return err
	}
	if hasArg {
		if err := a.Push("interpreter argument", arg); err != nil {
			return err
		}
	}
	return a.Push("interpreter name", interp)
}

// RemoveArgZero drops argv[0] and returns its bytes to the budget
// (fs/exec.c remove_arg_zero).
func (a *Args) RemoveArgZero() {
	if len(a.Argv) > 0 {
		a.avail += int64(len(a.Argv[0])) + 1
		a.used -= uint64(len(a.Argv[0])) + 1
		a.Argv = a.Argv[1:]
	}
}

// Push prepends s to argv, charged to the budget (copy_string_kernel); what
// names it in an error. Errors are Rewrite's.
func (a *Args) Push(what, s string) error {
	if err := a.take(what, -1, s); err != nil {
		return err
	}
	argv := make([]string, 0, len(a.Argv)+1)
	a.Argv = append(append(argv, s), a.Argv...)
	return nil
}

func rlimString(r uint64) string {
	if r == RlimInfinity {
		return "unlimited"
	}
	return fmt.Sprint(r)
}
