// Package segvguard is NetBSD's PaX Segvguard (sys/kern/kern_pax.c,
// pax_segvguard) for uexec: a program that dies of a core-dumping signal
// too often in a short time is refused execution for a while.
//
// A Guard is an execsw.Policy: add it to a switch's Policies, and it
// refuses, with EPERM, the exec of a program that is suspended for the
// caller's real uid. It learns of crashes through Crashed, which whoever
// sees the deaths calls (uexec's process tree backend does, for every
// process of the tree; see TreeOptions.OnExit in backend/linux).
//
// What NetBSD does, and so a Guard does:
//
//   - The key is the program's file (device and inode) and the real uid.
//     NetBSD attaches the state to the vnode (fileassoc) and keeps a list
//     of uids per vnode.
//   - The first crash starts a window of ExpiryTimeout seconds: the window
//     is fixed from that crash, not sliding. A crash after the window has
//     passed starts a new window with a count of 1 (logged "Suspension
//     expired.", NetBSD's text for that case too).
//   - The crash that brings the count to MaxCrashes (counting the first)
//     suspends the program for SuspendTimeout seconds (logged
//     "Suspending execution for %d seconds after %zu crashes.") and resets
//     the count and the window; an exec while suspended fails with EPERM
//     (logged "Preventing execution due to repeated segfaults.").
//   - A crash while suspended sees the window at 0, so it lifts the
//     suspension and starts a new window (kern_pax.c checks the expiry
//     before the suspension).
//   - Times are whole seconds (tv_sec), compared as kern_pax.c compares
//     them: suspended while suspended-until > now; a window passed when
//     expiry < now.
//
// Where uexec differs:
//
//   - The key is the file the caller named: for a #! script the script,
//     where NetBSD counts the crash against the image's text vnode (the
//     interpreter) and checks every file check_exec opens. A crashing
//     script then does not lock its user out of /bin/sh. Only the program
//     is checked (execsw.Direct), never an interpreter.
//   - The uid of a crash is the real uid at the program's exec (uexec does
//     not see setuid calls made after it); NetBSD takes it at the crash.
//   - Which signals count is Linux's SIG_KERNEL_COREDUMP_MASK (see
//     CoreDumpSignal), as NetBSD's SA_CORE does for its signals; whether a
//     core file was written does not matter, as in NetBSD.
//   - NetBSD logs with log(9); a Guard calls Log with the same texts.
package segvguard
