package binfmt

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParse: any string is accepted or refused with a *ParseError, never a
// panic, and an accepted rule stays within the kernel's bounds.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`:qemu-aarch64:M::\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/libexec/qemu-binfmt/aarch64-binfmt-P:OPF`,
		":python3.11:M::\\xa7\\x0d\\x0d\\x0a::/usr/bin/python3.11:",
		":e:E::rsx::/p:C\n", `:m:M:254:\x00\x01:\xff\xff:/i:`, "\x00a\x00E\x00\x00x\x00\x00/p\x00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *ParseError", err)
			}
			return
		}
		if r.Name == "" || r.Interpreter == "" || len(s) < minRegister || len(s) > maxRegister {
			t.Fatalf("accepted %q as %+v", s, r)
		}
		if r.Magic && (len(r.Bytes) == 0 || r.Offset+len(r.Bytes) > BufSize || r.Mask != nil && len(r.Mask) != len(r.Bytes)) {
			t.Fatalf("magic rule out of bounds: %+v", r)
		}
		r.matches([]byte(s), s)
	})
}

// FuzzReadConf: a binfmt.d file never panics the reader.
func FuzzReadConf(f *testing.F) {
	f.Add("# c\n:a:E::x::/p:\n;x\n")
	f.Add(":a:M::\\x41::/p:\n\n :b:E::y::/q:F \n")
	f.Add(":a:E::x::/p:\r:b:E::y::/p:\x00:c:E::z::/p:\r\n")
	f.Fuzz(func(t *testing.T, s string) {
		rules, err := ReadConf(strings.NewReader(s), "fuzz.conf")
		if err == nil {
			for _, r := range rules {
				// What systemd-binfmt would write, newline included,
				// is a rule the kernel takes.
				if r == nil || strings.ContainsAny(r.Text, "\r\n\x00") || len(r.Text)+1 > maxRegister {
					t.Fatalf("rule %+v", r)
				}
				if _, err := Parse(r.Text + "\n"); err != nil {
					t.Fatalf("rule %q: %v", r.Text, err)
				}
			}
		}
	})
}
