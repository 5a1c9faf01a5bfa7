//go:build linux && amd64

package linux

import "golang.org/x/sys/unix"

// servingNice is the nice value of the thread that answers a tree's
// execs.
//
// Its answer wakes the caller on the serving thread's CPU
// (notifSyncWakeUp), and at the same nice the caller preempted it before it
// went back to sleep in 250-290 of 300 execs of a shell loop. The caller's
// execve then found its CPU busy with the still runnable serving thread and
// moved itself to the other CPU (sched_exec: exec balancing picks the
// idlest CPU), which on these guests is halted and takes 20-60 µs to wake:
// a tracefs trace (sched_migrate_task) counted 220-350 such moves per 300
// execs against 32-56 natively. At nice -10 the serving thread sleeps before
// the caller runs (93-113 moves in a C model of the serving loop), and the
// loop of 300 /bin/true went from 1.17x native to 1.09x in one interleaved
// run (SCHED_FIFO: 1.07x, not taken: a real-time thread would preempt
// every other task of the machine for each exec of the tree).
const servingNice = -10

// raiseServingPriority gives the calling thread, locked to its goroutine,
// servingNice. Raising a priority needs CAP_SYS_NICE or an RLIMIT_NICE that
// allows it: an ordinary user's thread usually stays at its nice, and the
// tree works the same, a little slower.
func raiseServingPriority() {
	unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), servingNice)
}
