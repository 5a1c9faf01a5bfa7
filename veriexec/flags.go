package veriexec

import (
	"fmt"
	"strings"
)

// Flags are an entry's access types (sys/sys/verified_exec.h).
type Flags uint8

const (
	Direct    Flags = 0x01 // VERIEXEC_DIRECT: exec'd as the program
	Indirect  Flags = 0x02 // VERIEXEC_INDIRECT: an interpreter of a program
	File      Flags = 0x04 // VERIEXEC_FILE: opened (uexec cannot check opens)
	Untrusted Flags = 0x10 // VERIEXEC_UNTRUSTED: on storage that may change behind the kernel's back: hashed at every use
)

// flagNames are veriexecctl_parse.y's words, aliases included.
var flagNames = map[string]Flags{
	"direct":      Direct,
	"indirect":    Indirect,
	"file":        File,
	"untrusted":   Untrusted,
	"program":     Direct,
	"interpreter": Indirect,
	"script":      Direct | File,
	"library":     File | Indirect,
}

// parseFlags parses a comma-separated list of flag words, in any case.
func parseFlags(s string) (Flags, error) {
	var f Flags
	for _, w := range strings.Split(s, ",") {
		w = strings.TrimSpace(w)
		if strings.ContainsAny(w, " \t") {
			return 0, fmt.Errorf("flags %q: separate flags with commas", s)
		}
		v, ok := flagNames[strings.ToLower(w)]
		if !ok {
			return 0, fmt.Errorf("unknown flag %q", w)
		}
		f |= v
	}
	return f, nil
}

// String returns the flags as a signatures file spells them.
func (f Flags) String() string {
	var out []string
	for _, x := range []struct {
		f    Flags
		name string
	}{{Direct, "direct"}, {Indirect, "indirect"}, {File, "file"}, {Untrusted, "untrusted"}} {
		if f&x.f != 0 {
			out = append(out, x.name)
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ",")
}
