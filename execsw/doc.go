// Package execsw is the exec switch and the exec package of the NetBSD seed
// (sys/kern/kern_exec.c), planning a Linux execve in user space.
//
// A Switch is the seed's execsw[] table: format handlers registered with a
// priority class and tried in order by CheckExec (check_exec). A Package is
// the seed's struct exec_package: the file being executed, its header, the vm
// commands the handler built, the entry point and the fake arguments of a #!
// rewrite. Execve runs the first half of the seed's execve1 (execve_loadvm in
// newer NetBSD): resolve and check the file, collect the arguments, let the
// handlers plan the image, lay out the stack. The result is a Plan, a plain
// value: nothing has been done to any process yet. Applying it is a
// backend's job.
//
// Where NetBSD and Linux differ, Linux decides what the caller observes: the
// order of checks and the errno of each follow Linux fs/exec.c.
package execsw
