// Package script is the #! format handler (Linux fs/binfmt_script.c; the
// seed's exec_script_makecmds): a file starting with "#!" names an
// interpreter, optionally with one argument, that is executed instead with
// the script's path appended to its arguments.
//
// Parse is the pure parser of the first line. Format plugs it into an
// execsw.Switch: it rewrites the arguments and re-enters the switch's
// CheckExec for the interpreter, which may itself be a script (at most 5
// deep, then ELOOP).
//
// Set-user-ID and set-group-ID bits on a script are ignored, as Linux does:
// the credentials come from the final, non-script file, which the switch
// decides.
//
// # Security
//
// The header is untrusted: Parse looks at no more than the first 256 bytes,
// never reads outside them, and rejects a line whose interpreter name may
// have been cut off by that limit (executing a truncated path would run a
// different program).
package script
