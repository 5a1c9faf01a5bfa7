package binfmt

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// The kernel's answers to these register strings were measured on 6.18
// (policies.md section 1); the kernel-oracle test in cmd/uexec asks it
// again on every run.
func TestParse(t *testing.T) {
	long := strings.Repeat("n", 256)
	tests := []struct {
		name string
		in   string
		err  unix.Errno
		want Rule
	}{
		{"magic", `:qemu:M::\x7fELF\x02::/usr/bin/qemu:OPF`, 0,
			Rule{Name: "qemu", Magic: true, Bytes: []byte("\x7fELF\x02"), Interpreter: "/usr/bin/qemu", Flags: OpenBinary | PreserveArgv0 | FixBinary}},
		{"mask and offset", `:m:M:2:\x41\x42:\xff\x0f:/i:`, 0,
			Rule{Name: "m", Magic: true, Offset: 2, Bytes: []byte("AB"), Mask: []byte{0xff, 0x0f}, Interpreter: "/i"}},
		{"extension", ":e:E::rsx::/p:C", 0, Rule{Name: "e", Ext: "rsx", Interpreter: "/p", Flags: Credentials | OpenBinary}},
		{"E ignores offset and mask", ":e:E:zz:rsx:yy:/p:", 0, Rule{Name: "e", Ext: "rsx", Interpreter: "/p"}},
		{"other delimiter", "|e|E||rsx||/p|P", 0, Rule{Name: "e", Ext: "rsx", Interpreter: "/p", Flags: PreserveArgv0}},
		{"trailing newline", ":e:E::rsx::/p:\n", 0, Rule{Name: "e", Ext: "rsx", Interpreter: "/p"}},
		{"flags repeated", ":e:E::rsx::/p:PPFF", 0, Rule{Name: "e", Ext: "rsx", Interpreter: "/p", Flags: PreserveArgv0 | FixBinary}},
		{"literal backslash", `:m:M::\y::/i:`, 0, Rule{Name: "m", Magic: true, Bytes: []byte(`\y`), Interpreter: "/i"}},
		{"NUL magic byte", `:m:M::\x00\x01::/i:`, 0, Rule{Name: "m", Magic: true, Bytes: []byte{0, 1}, Interpreter: "/i"}},
		{"offset plus", ":m:M:+3:ab::/i:", 0, Rule{Name: "m", Magic: true, Offset: 3, Bytes: []byte("ab"), Interpreter: "/i"}},
		{"magic to byte 256", ":m:M:254:ab::/i:", 0, Rule{Name: "m", Magic: true, Offset: 254, Bytes: []byte("ab"), Interpreter: "/i"}},

		{"too short", ":a:E::b::", unix.EINVAL, Rule{}},
		{"too long", ":a:E::b::/" + strings.Repeat("x", 1920) + ":", unix.EINVAL, Rule{}},
		{"empty name", "::E::rsx::/p:", unix.EINVAL, Rule{}},
		{"dot name", ":.:E::rsx::/p:", unix.EINVAL, Rule{}},
		{"dotdot name", ":..:E::rsx::/p:", unix.EINVAL, Rule{}},
		{"slash in name", ":a/b:E::rsx::/p:", unix.EINVAL, Rule{}},
		{"bad type", ":a:X::rsx::/p:", unix.EINVAL, Rule{}},
		{"long type", ":a:MM::ab::/p:", unix.EINVAL, Rule{}},
		{"negative offset", ":a:M:-1:ab::/p:", unix.EINVAL, Rule{}},
		{"hex offset", ":a:M:0x10:ab::/p:", unix.EINVAL, Rule{}},
		{"blank offset", ":a:M: 5:ab::/p:", unix.EINVAL, Rule{}},
		{"bad hex", `:a:M::\xg0::/p:`, unix.EINVAL, Rule{}},
		{"short hex", `:a:M::\x4::/p:`, unix.EINVAL, Rule{}},
		{"empty magic", ":a:M:::ff:/p:", unix.EINVAL, Rule{}},
		{"mask length", `:a:M::ab:\xff:/p:`, unix.EINVAL, Rule{}},
		{"beyond 256", ":a:M:255:ab::/p:", unix.EINVAL, Rule{}},
		{"empty extension", ":a:E::::/p:", unix.EINVAL, Rule{}},
		{"slash in extension", ":a:E::r/x::/p:", unix.EINVAL, Rule{}},
		{"empty interpreter", ":a:E::rsx:::", unix.EINVAL, Rule{}},
		{"lowercase flag", ":a:E::rsx::/p:p", unix.EINVAL, Rule{}},
		{"flag T", ":a:E::rsx::/p:T", unix.EINVAL, Rule{}},
		{"no last delimiter", ":a:E::rsx::/pp", unix.EINVAL, Rule{}},
		{"two newlines", ":a:E::rsx::/p:\n\n", unix.EINVAL, Rule{}},
		{"name too long", ":" + long + ":E::rsx::/p:", 0, Rule{Name: long, Ext: "rsx", Interpreter: "/p"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse(tt.in)
			if tt.err != 0 {
				if !errors.Is(err, tt.err) {
					t.Fatalf("Parse(%q) = %v, %v; want %v", tt.in, r, err, tt.err)
				}
				if !strings.Contains(err.Error(), "binfmt rule") {
					t.Errorf("error %q does not name the rule", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			w := tt.want
			if r.Name != w.Name || r.Magic != w.Magic || r.Offset != w.Offset || !bytes.Equal(r.Bytes, w.Bytes) ||
				!bytes.Equal(r.Mask, w.Mask) || r.Ext != w.Ext || r.Interpreter != w.Interpreter || r.Flags != w.Flags {
				t.Errorf("Parse(%q) = %+v, want %+v", tt.in, *r, w)
			}
			if r.String() != tt.in {
				t.Errorf("String() = %q, want the register string", r.String())
			}
		})
	}
}

func TestMatches(t *testing.T) {
	mustParse := func(s string) *Rule {
		r, err := Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	tests := []struct {
		rule, name string
		hdr        string
		want       bool
	}{
		{":e:E::rsx::/p:", "./t.rsx", "", true},
		{":e:E::rsx::/p:", "dir.rsx/x", "", false},
		{":e:E::rsx::/p:", "/dev/fd/3", "", false},
		{":e:E::rsx::/p:", "a.RSX", "", false},
		{":e:E::rsx::/p:", "a.x.rsx", "", true},
		{":m:M::ab::/p:", "x", "abc", true},
		{":m:M::ab::/p:", "x", "a", false},
		{`:m:M:1:\x00::/p:`, "x", "a", true}, // past the file's end the buffer is zeros
		{`:m:M::\x40:\xf0:/p:`, "x", "\x4f", true},
		{`:m:M::\x40:\xf0:/p:`, "x", "\x5f", false},
	}
	for _, tt := range tests {
		if got := mustParse(tt.rule).matches([]byte(tt.hdr), tt.name); got != tt.want {
			t.Errorf("%s matches %q with %q = %v, want %v", tt.rule, tt.name, tt.hdr, got, tt.want)
		}
	}
}
