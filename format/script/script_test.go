package script

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

type parseCase struct {
	name   string
	buf    string
	interp string
	arg    string
	hasArg bool
	err    error
}

// parseCases are the rules of fs/binfmt_script.c, one case each; they also
// seed FuzzParse.
var parseCases = []parseCase{
	{name: "plain", buf: "#!/bin/sh\n", interp: "/bin/sh"},
	{name: "arg", buf: "#!/bin/sh -e\necho\n", interp: "/bin/sh", arg: "-e", hasArg: true},
	{name: "one arg with inner blanks", buf: "#!/usr/bin/env a b\t c\n", interp: "/usr/bin/env", arg: "a b\t c", hasArg: true},
	{name: "leading blanks", buf: "#! \t /bin/sh\n", interp: "/bin/sh"},
	{name: "trailing blanks trimmed", buf: "#!/bin/sh \t \n", interp: "/bin/sh"},
	{name: "arg trailing blanks trimmed", buf: "#!/bin/sh  -x  \t\n", interp: "/bin/sh", arg: "-x", hasArg: true},
	{name: "tab separator", buf: "#!/bin/sh\t-x\n", interp: "/bin/sh", arg: "-x", hasArg: true},
	{name: "CR is part of the name", buf: "#!/bin/sh\r\n", interp: "/bin/sh\r"},
	{name: "CR is part of the arg", buf: "#!/bin/sh -x\r\n", interp: "/bin/sh", arg: "-x\r", hasArg: true},
	{name: "NUL ends the name", buf: "#!/bin/sh\x00 -x\n", interp: "/bin/sh"},
	{name: "NUL ends the arg", buf: "#!/bin/sh -x\x00y z\n", interp: "/bin/sh", arg: "-x", hasArg: true},
	{name: "NUL right after blanks gives an empty arg", buf: "#!/bin/sh \x00y\n", interp: "/bin/sh", arg: "", hasArg: true},
	{name: "NUL before the name gives an empty name", buf: "#! \x00/bin/sh\n", interp: ""},
	{name: "no newline short file", buf: "#!/bin/sh", interp: "/bin/sh"},
	{name: "no newline short file with arg", buf: "#!/bin/sh -x", interp: "/bin/sh", arg: "-x", hasArg: true},
	{name: "bare #!", buf: "#!", interp: ""},
	{name: "#! and NUL", buf: "#!\x00\n", interp: ""},
	{name: "#! and blanks then EOF", buf: "#!   ", interp: ""},
	{name: "#! newline", buf: "#!\n", err: unix.ENOEXEC},
	{name: "#! blanks newline", buf: "#! \t \n", err: unix.ENOEXEC},
	{name: "no #!", buf: "#/bin/sh\n", err: unix.ENOEXEC},
	{name: "empty", buf: "", err: unix.ENOEXEC},
	{name: "ELF", buf: "\x7fELF\x02\x01\x01", err: unix.ENOEXEC},
	{name: "256 blanks", buf: "#!" + strings.Repeat(" ", 300), err: unix.ENOEXEC},
	{name: "254 tabs then EOF", buf: "#!" + strings.Repeat("\t", 254), err: unix.ENOEXEC},
	{name: "truncated name", buf: "#!/" + strings.Repeat("a", 300), err: unix.ENOEXEC},
	{name: "name fills the buffer", buf: "#!/" + strings.Repeat("a", 253), err: unix.ENOEXEC},
	{name: "name fills the buffer then newline", buf: "#!/" + strings.Repeat("a", 252) + "\n", interp: "/" + strings.Repeat("a", 252)},
	{name: "name then blank at the last byte", buf: "#!/" + strings.Repeat("a", 252) + " ", interp: "/" + strings.Repeat("a", 252)},
	{name: "truncated name after blanks", buf: "#!   /" + strings.Repeat("a", 300), err: unix.ENOEXEC},
	{name: "long arg truncated at byte 255", buf: "#!/bin/sh " + strings.Repeat("y", 400) + "\n",
		interp: "/bin/sh", arg: strings.Repeat("y", 255-10), hasArg: true},
	{name: "long arg ends with blanks at the cut", buf: "#!/bin/sh " + strings.Repeat("y", 240) + "     zzzzzzzzzz\n",
		interp: "/bin/sh", arg: strings.Repeat("y", 240), hasArg: true},
	{name: "newline at the last byte", buf: "#!/bin/sh " + strings.Repeat("y", 245) + "\n", interp: "/bin/sh", arg: strings.Repeat("y", 245), hasArg: true},
	{name: "newline past the buffer", buf: "#!/bin/sh " + strings.Repeat("y", 246) + "\n", interp: "/bin/sh", arg: strings.Repeat("y", 245), hasArg: true},
	{name: "second line ignored", buf: "#!/bin/a b\n#!/bin/c d\n", interp: "/bin/a", arg: "b", hasArg: true},
	{name: "relative name", buf: "#!interp\n", interp: "interp"},
}

func TestParse(t *testing.T) {
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			interp, arg, hasArg, err := Parse([]byte(tc.buf))
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if interp != tc.interp || arg != tc.arg || hasArg != tc.hasArg {
				t.Errorf("Parse = %q, %q, %v; want %q, %q, %v", interp, arg, hasArg, tc.interp, tc.arg, tc.hasArg)
			}
		})
	}
}

// FuzzParse checks that Parse never panics and keeps its promises: only
// the first BufSize bytes count, zero padding changes nothing, and the
// strings it returns hold no byte that ends them.
func FuzzParse(f *testing.F) {
	for _, tc := range parseCases {
		f.Add([]byte(tc.buf))
	}
	f.Fuzz(func(t *testing.T, buf []byte) {
		interp, arg, hasArg, err := Parse(buf)
		if len(buf) > BufSize {
			i2, a2, h2, e2 := Parse(buf[:BufSize])
			if i2 != interp || a2 != arg || h2 != hasArg || (e2 == nil) != (err == nil) {
				t.Fatalf("bytes past %d changed the result", BufSize)
			}
		} else {
			padded := append(append([]byte(nil), buf...), make([]byte, BufSize-len(buf)+7)...)
			i2, a2, h2, e2 := Parse(padded)
			if i2 != interp || a2 != arg || h2 != hasArg || (e2 == nil) != (err == nil) {
				t.Fatalf("zero padding changed the result")
			}
		}
		if err != nil {
			if !errors.Is(err, unix.ENOEXEC) {
				t.Fatalf("error %v is not ENOEXEC", err)
			}
			if interp != "" || arg != "" || hasArg {
				t.Fatalf("error with results")
			}
			return
		}
		if strings.ContainsAny(interp, " \t\x00\n") {
			t.Fatalf("interpreter %q holds a terminator", interp)
		}
		if strings.ContainsAny(arg, "\x00\n") || (arg != "" && (arg[0] == ' ' || arg[0] == '\t')) {
			t.Fatalf("argument %q", arg)
		}
		if !hasArg && arg != "" {
			t.Fatalf("argument %q without hasArg", arg)
		}
		if len(interp)+len(arg) > BufSize-3 {
			t.Fatalf("results longer than the buffer")
		}
	})
}
