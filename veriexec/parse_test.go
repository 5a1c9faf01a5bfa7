package veriexec

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

const (
	sha256Hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	sha384Hex = "38b060a751ac96384cd9327eb1b1e36a21fdb71114be07434c0cc7bf63f6e1da274edebfe76f65fbd51ad2f14898b95b"
	sha512Hex = "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		want  []Entry // Path, Type, Flags, Line
		line  int     // of the error
		errno unix.Errno
		msg   string
	}{
		{name: "empty", in: ""},
		{name: "comments", in: "# a comment\n\n   # another\n"},
		{name: "no flags is direct", in: "/bin/sh SHA256 " + sha256Hex + "\n",
			want: []Entry{{Path: "/bin/sh", Type: "SHA256", Flags: Direct, Line: 1}}},
		{name: "type any case", in: "/a sha384 " + sha384Hex + "\n/b Sha512 " + strings.ToUpper(sha512Hex),
			want: []Entry{{Path: "/a", Type: "SHA384", Flags: Direct, Line: 1}, {Path: "/b", Type: "SHA512", Flags: Direct, Line: 2}}},
		{name: "flags and aliases", in: "/a SHA256 " + sha256Hex + " INDIRECT,File\n" +
			"/b SHA256 " + sha256Hex + " program\n" +
			"/c SHA256 " + sha256Hex + " interpreter, untrusted\n" +
			"/d SHA256 " + sha256Hex + " script\n" +
			"/e SHA256 " + sha256Hex + " library\n",
			want: []Entry{{Path: "/a", Type: "SHA256", Flags: Indirect | File, Line: 1},
				{Path: "/b", Type: "SHA256", Flags: Direct, Line: 2},
				{Path: "/c", Type: "SHA256", Flags: Indirect | Untrusted, Line: 3},
				{Path: "/d", Type: "SHA256", Flags: Direct | File, Line: 4},
				{Path: "/e", Type: "SHA256", Flags: File | Indirect, Line: 5}}},
		{name: "continuation", in: "# x\n/a \\\n SHA256 \\\n" + sha256Hex + " \\\n direct\n/b SHA256 " + sha256Hex + "\n",
			want: []Entry{{Path: "/a", Type: "SHA256", Flags: Direct, Line: 2}, {Path: "/b", Type: "SHA256", Flags: Direct, Line: 6}}},
		{name: "trailing comment", in: "/a SHA256 " + sha256Hex + " direct # the shell\n",
			want: []Entry{{Path: "/a", Type: "SHA256", Flags: Direct, Line: 1}}},
		{name: "same file twice adds flags", in: "/a SHA256 " + sha256Hex + " direct\n/a SHA256 " + sha256Hex + " indirect\n",
			want: []Entry{{Path: "/a", Type: "SHA256", Flags: Direct | Indirect, Line: 1}}},

		{name: "unknown type", in: "# x\n/a MD5 d41d8cd98f00b204e9800998ecf8427e\n", line: 2, errno: unix.EOPNOTSUPP, msg: "unknown fingerprint type"},
		{name: "short fingerprint", in: "/a SHA256 " + sha256Hex[:62] + "\n", line: 1, errno: unix.EINVAL, msg: "62 hex digits, want 64"},
		{name: "sha512 of sha256 length", in: "/a SHA512 " + sha256Hex + "\n", line: 1, errno: unix.EINVAL, msg: "want 128"},
		{name: "odd length", in: "/a SHA256 " + sha256Hex + "0\n", line: 1, errno: unix.EINVAL, msg: "not hex"},
		{name: "not hex", in: "/a SHA256 " + strings.Repeat("zz", 32) + "\n", line: 1, errno: unix.EINVAL, msg: "not hex"},
		{name: "relative path", in: "\n\nbin/sh SHA256 " + sha256Hex + "\n", line: 3, errno: unix.EINVAL, msg: "not absolute"},
		{name: "unknown flag", in: "/a SHA256 " + sha256Hex + " direct,setuid\n", line: 1, errno: unix.EINVAL, msg: `unknown flag "setuid"`},
		{name: "flags without comma", in: "/a SHA256 " + sha256Hex + " direct file\n", line: 1, errno: unix.EINVAL, msg: "commas"},
		{name: "empty flag", in: "/a SHA256 " + sha256Hex + " direct,\n", line: 1, errno: unix.EINVAL, msg: "unknown flag"},
		{name: "missing fingerprint", in: "/a SHA256\n", line: 1, errno: unix.EINVAL, msg: "want: path type fingerprint"},
		{name: "conflicting entries", in: "/a SHA256 " + sha256Hex + "\n/a SHA256 " + strings.Repeat("00", 32) + "\n", line: 2, errno: unix.EEXIST, msg: "first at line 1"},
		{name: "error line after continuation", in: "/a SHA256 \\\n" + sha256Hex + "\n/b FOO 00\n", line: 3, errno: unix.EOPNOTSUPP, msg: "FOO"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tab, err := Parse(strings.NewReader(tc.in), "sigs")
			if tc.errno != 0 {
				var pe *ParseError
				if !errors.As(err, &pe) || pe.Line != tc.line || !errors.Is(err, tc.errno) || !strings.Contains(err.Error(), tc.msg) ||
					!strings.HasPrefix(err.Error(), "sigs:") {
					t.Fatalf("err = %v, want sigs:%d: ...%s... (%v)", err, tc.line, tc.msg, tc.errno)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := tab.Entries()
			if len(got) != len(tc.want) {
				t.Fatalf("got %d entries %+v, want %d", len(got), got, len(tc.want))
			}
			for i, w := range tc.want {
				g := got[i]
				if g.Path != w.Path || g.Type != w.Type || g.Flags != w.Flags || g.Line != w.Line {
					t.Errorf("entry %d: got %s %s %v line %d, want %s %s %v line %d", i, g.Path, g.Type, g.Flags, g.Line, w.Path, w.Type, w.Flags, w.Line)
				}
			}
		})
	}
}

// TestWriteParse: what WriteTo writes, Parse reads back the same.
func TestWriteParse(t *testing.T) {
	in := "/b SHA512 " + sha512Hex + " library,untrusted\n/a SHA256 " + sha256Hex + " script\n"
	tab, err := Parse(strings.NewReader(in), "in")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tab.WriteTo(&buf)
	want := "/a SHA256 " + sha256Hex + " direct,file\n/b SHA512 " + sha512Hex + " indirect,file,untrusted\n"
	if buf.String() != want {
		t.Errorf("wrote\n%s\nwant\n%s", buf.String(), want)
	}
	again, err := Parse(&buf, "out")
	if err != nil || again.Len() != 2 {
		t.Fatalf("%v %v", again, err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("/bin/sh SHA256 " + sha256Hex + " direct,indirect\n# c\n/x sha512 \\\n" + sha512Hex + "\n"))
	f.Add([]byte("/a SHA384 " + sha384Hex + " library,UNTRUSTED # x\n"))
	f.Add([]byte("rel MD5 00\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tab, err := Parse(bytes.NewReader(data), "fuzz")
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Err == nil {
				t.Fatalf("error %v is not a ParseError with an errno", err)
			}
			return
		}
		// Every accepted table is written and read back to the same.
		var buf bytes.Buffer
		if _, err := tab.WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
		again, err := Parse(bytes.NewReader(buf.Bytes()), "again")
		if err != nil {
			t.Fatalf("re-parse of\n%s: %v", buf.Bytes(), err)
		}
		var buf2 bytes.Buffer
		again.WriteTo(&buf2)
		if !bytes.Equal(buf.Bytes(), buf2.Bytes()) {
			t.Fatalf("not stable:\n%s\n%s", buf.Bytes(), buf2.Bytes())
		}
		for _, e := range tab.Entries() {
			if !strings.HasPrefix(e.Path, "/") || e.Flags == 0 || len(e.Fingerprint) != e.digest.size {
				t.Fatalf("bad entry %+v", e)
			}
		}
	})
}
