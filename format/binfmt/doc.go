// Package binfmt is binfmt_misc in user space: rules in the kernel's
// register syntax (fs/binfmt_misc.c, Documentation/admin-guide/binfmt-misc.rst)
// that hand a file to an interpreter by its magic bytes or its name's
// extension, and Misc, the exec switch entry that applies them.
//
// Rules are parsed exactly as the kernel's register file parses a write
// (Parse) and registered as it registers them (Misc.Register): the same
// strings are accepted and refused, with the same errno. Files in
// systemd's binfmt.d format are read with systemd-binfmt's precedence
// (ReadConf, LoadDirs).
//
// Misc is tried before #! and ELF, newest rule first, and rewrites an exec
// as the kernel does: argv (P), AT_EXECFD (O), the credentials of the
// file rather than its interpreter (C), an interpreter opened when the
// rule is registered (F), at most five nested interpreters.
//
// # Security
//
// Rule strings and binfmt.d files are untrusted input: Parse never panics
// and bounds every length as the kernel does (a rule of at most 1920 bytes,
// magic and mask within the first 256 bytes of a file). A rule runs the
// interpreter it names with the caller's credentials, or with those of the
// file exec'd when it has C: give rules only from sources trusted as much
// as the interpreters they name.
package binfmt
