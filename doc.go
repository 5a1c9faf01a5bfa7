// Package uexec is a user-space execve engine for Linux x86-64: the NetBSD
// kernel's exec subsystem (sys/kern/kern_exec.c) rebuilt in Go.
//
// NewSwitch returns the exec switch with the native handlers (#! scripts
// and ELF). SelfRequest describes an exec made by this process. Planning
// is execsw.Switch.Execve; running a plan is package backend/linux.
package uexec
