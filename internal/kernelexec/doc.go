// Package kernelexec records what the Linux kernel gives a freshly exec'd
// program, so that differential tests can hold uexec to it.
//
// Snapshot starts a program natively under ptrace and stops it at its very
// first instruction (the SIGTRAP a PTRACE_TRACEME child receives after a
// successful execve). At that point it collects everything a program or its
// caller can observe about the new image: the registers (general, segment,
// fs/gs base and the FXSAVE area), the rseq registration, /proc/PID/maps,
// auxv, stat (the mm fields), status, cmdline, environ, personality,
// limits, the exe and cwd links, the open descriptors and the stack bytes
// from rsp to the end of the [stack] mapping. SnapshotPid runs the same
// collector on any process stopped under the caller's ptrace, such as an
// image that uexec has just built, and Compare lists what differs between
// two snapshots, with options for what may legitimately differ (AT_RANDOM
// bytes, addresses under ASLR, the vdso).
//
// The probe half of the package builds testdata/probe/probe.c, a program
// that reports what it observed from the inside (its registers at its own
// entry point, the stack it was given, /proc/self) as key=value lines;
// ParseProbe and DiffProbe turn two runs of it (natively and under uexec)
// into a list of differing keys.
//
// Address-space randomisation is switched off for one program by setting
// the ADDR_NO_RANDOMIZE personality on a locked OS thread just before that
// thread forks: personality is per task and a fork copies it, and the
// thread is discarded afterwards, so the caller's process is unaffected.
// Resource limits, which are per process, are set instead by a tiny C
// launcher (compiled with the system C compiler on first use) that calls
// setrlimit, personality and PTRACE_TRACEME and then execs the program, so
// that the only exec the tracer sees is the program's.
//
// The package is for tests: it needs Linux on x86-64 and ptrace; other
// systems get errors.ErrUnsupported.
package kernelexec
