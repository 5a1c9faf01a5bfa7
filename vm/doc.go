// Package vm holds the address arithmetic, protections and vm commands that
// describe a new process image, and the AddressSpace interface that backends
// implement to build it.
//
// A vm command is the seed's struct exec_vmcmd: map file pages
// (vmcmd_map_pagedvn), read file bytes into anonymous memory
// (vmcmd_map_readvn) or zero-fill (vmcmd_map_zero). Linux's binfmt_elf needs
// three more steps that NetBSD does without: reserve a whole image span,
// unmap the holes inside it, and clear the tail of the last file page
// (padzero). They are commands too, so that a plan shows everything a load does.
//
// Every command carries the absolute address the planner chose. A command
// flagged FlagBase starts an image whose placement the backend may let the
// kernel choose (the seed's VMCMD_BASE); the commands flagged FlagRelative
// that follow move by the same amount (VMCMD_RELATIVE).
//
// # Security
//
// Addresses come from untrusted program headers: every sum is overflow
// checked (Addr.Add returns ok=false) and callers reject what does not fit.
package vm
