//go:build linux && amd64

package linux

import "golang.org/x/sys/unix"

// The thread that answers a tree's execs asks for a higher priority
// (servingNice) and a short time slice (servingSlice).
//
// Its answer wakes the caller on the serving thread's CPU
// (notifSyncWakeUp), and with the caller's nice and slice the caller
// preempted it before it went back to sleep in 250-290 of 300 execs of a
// shell loop. The caller's execve then found its CPU busy with the still
// runnable serving thread and moved itself to the other CPU (sched_exec:
// exec balancing takes the idlest CPU), which on these guests is halted
// and takes 20-60 µs to wake: a tracefs trace (sched_migrate_task) counted
// 220-350 such moves per 300 execs, against 32-56 natively. Either setting
// keeps the serving thread on its CPU until it sleeps: EEVDF lets a waking
// task preempt one of a higher weight, or one within a slice shorter than
// its own (RUN_TO_PARITY), less often. The loop of 300 /bin/true as root,
// 40 rounds in turns: 1.18x native before, 1.13x at nice -10, 1.08x with
// the slice too. An ordinary user may shorten its slice (any SCHED_NORMAL
// thread may) but not raise its priority: the moves there halve (211-293
// to 129-148). SCHED_FIFO (1.07x) is not used: a real-time thread would
// preempt every other task of the machine at each exec of the tree.
const (
	servingNice  = -10
	servingSlice = 100_000 // ns, the shortest sched_setattr allows
)

// raiseServingPriority gives the calling thread, locked to its goroutine,
// servingNice where this process may raise its priority (CAP_SYS_NICE or an
// RLIMIT_NICE that allows it), and servingSlice.
func raiseServingPriority() {
	tid := unix.Gettid()
	unix.Setpriority(unix.PRIO_PROCESS, tid, servingNice)
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_NORMAL, Runtime: servingSlice}
	// sched_setattr sets the nice too: the one the thread has now
	// (getpriority's raw value is 20 - nice).
	if p, err := unix.Getpriority(unix.PRIO_PROCESS, tid); err == nil {
		attr.Nice = int32(20 - p)
	}
	unix.SchedSetAttr(0, &attr, 0)
}
