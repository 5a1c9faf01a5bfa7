// Package veriexec is NetBSD's verified exec (sys/kern/kern_veriexec.c,
// veriexecctl(8), veriexec(5)) as an execsw.Policy: a table of files and
// their fingerprints, read from a signatures file, against which every
// file an exec opens is checked before it runs.
//
// A signatures file has one entry a line:
//
//	path type fingerprint [flags]
//
// path is absolute; type is a digest name (SHA256, SHA384, SHA512, any
// case); fingerprint is the digest in hex; flags is a comma-separated
// list of direct, indirect, file, untrusted and the aliases program
// (direct), interpreter (indirect), script (direct,file) and library
// (file,indirect), any case; no flag means direct. # starts a comment,
// and a backslash at the end of a line continues it.
//
// Parse reads such a file into a Table; Load does so and resolves each
// path's symlinks, as veriexecctl's load looks each path up to its vnode.
// Table.Policy returns the policy at a strict level (Learning, IDS, IPS,
// Lockdown), to be appended to an execsw.Switch's Policies. A Learner is
// the policy that writes the signatures file of the files a tree runs.
//
// A program is checked as DIRECT, an interpreter (#!, PT_INTERP,
// binfmt_misc) as INDIRECT, as check_exec asks veriexec_verify. A verified
// file is pinned (vm.File.Pin): the backend maps it from the descriptor
// its fingerprint was read through, and only while its size, mtime and
// ctime are those it had then.
//
// # Security
//
// Parse reads untrusted input: it never panics, holds at most the file in
// memory, and refuses (with the file and line) any entry it does not
// understand in full, rather than skipping it: an entry silently lost
// would be a file silently unchecked, or refused, later. It is fuzzed
// (FuzzParse).
//
// What the policy can enforce is bounded by where it sits: it sees the
// execs uexec plans, and refuses, at IPS and above, the execs of a tree
// uexec would otherwise leave to the kernel unchecked (UnplannedPolicy).
// It cannot refuse opens, writes, renames or removals of listed files,
// which NetBSD's kernel refuses at IPS and lockdown.
package veriexec
