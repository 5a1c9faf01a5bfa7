package execsw

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestNewCred(t *testing.T) {
	user := Cred{UID: 1000, EUID: 1000, GID: 100, EGID: 100}
	root := Cred{}
	for _, tc := range []struct {
		name      string
		cred      Cred
		mode      uint32
		nosuid    bool
		downgrade bool
		want      NewCred
	}{
		{"plain", user, 0o755, false, false, NewCred{UID: 1000, EUID: 1000, SUID: 1000, GID: 100, EGID: 100, SGID: 100}},
		{"setuid", user, unix.S_ISUID | 0o755, false, false, NewCred{UID: 1000, EUID: 0, SUID: 0, GID: 100, EGID: 100, SGID: 100, Secure: true, SetID: true, PerClear: true}},
		{"setgid needs group x", user, unix.S_ISGID | 0o745, false, false, NewCred{UID: 1000, EUID: 1000, SUID: 1000, GID: 100, EGID: 100, SGID: 100}},
		{"setgid", user, unix.S_ISGID | 0o755, false, false, NewCred{UID: 1000, EUID: 1000, SUID: 1000, GID: 100, EGID: 50, SGID: 50, Secure: true, SetID: true, PerClear: true}},
		{"nosuid", user, unix.S_ISUID | 0o755, true, false, NewCred{UID: 1000, EUID: 1000, SUID: 1000, GID: 100, EGID: 100, SGID: 100, Ignored: "nosuid mount"}},
		{"no_new_privs", Cred{UID: 1000, EUID: 1000, GID: 100, EGID: 100, NoNewPrivs: true}, unix.S_ISUID | 0o755, false, false, NewCred{UID: 1000, EUID: 1000, SUID: 1000, GID: 100, EGID: 100, SGID: 100, Ignored: "no_new_privs"}},
		{"traced downgrade", user, unix.S_ISUID | 0o755, false, true, NewCred{UID: 1000, EUID: 1000, SUID: 1000, GID: 100, EGID: 100, SGID: 100, Secure: true, Ignored: "uexec cannot raise the ids (no CAP_SETUID and CAP_SETGID where the image is built): the caller's ids, as under an unprivileged tracer", Downgraded: true, PerClear: true}},
		// The ids stay, the personality flags still go.
		{"root runs setuid root", root, unix.S_ISUID | 0o755, false, false, NewCred{PerClear: true}},
		{"setuid caller keeps secure", Cred{UID: 1000, EUID: 0, GID: 100, EGID: 100}, 0o755, false, false, NewCred{UID: 1000, EUID: 0, SUID: 0, GID: 100, EGID: 100, SGID: 100, Secure: true, SetID: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mode := tc.mode
			if tc.nosuid {
				mode &^= unix.S_ISUID | unix.S_ISGID
			}
			epp := &Package{Req: &Request{Cred: tc.cred, Downgrade: tc.downgrade}, Attr: Attr{Mode: mode, UID: 0, GID: 50, NoSuid: tc.nosuid}}
			if tc.nosuid {
				epp.Attr.Mode = tc.mode // newCred must ignore the bits on a nosuid mount even if present
			}
			got := newCred(epp)
			if got != tc.want {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// TestNewCredFileCaps: a file's capabilities count for a caller whose real
// uid is not 0; a nosuid mount or no_new_privs keeps them from applying,
// and says so.
func TestNewCredFileCaps(t *testing.T) {
	user := Cred{UID: 1000, EUID: 1000, GID: 100, EGID: 100}
	caps := FileCaps{Present: true, Effective: true, Permitted: 1 << 2} // cap_dac_read_search+ep
	same := NewCred{UID: 1000, EUID: 1000, SUID: 1000, GID: 100, EGID: 100, SGID: 100}
	for _, tc := range []struct {
		name   string
		cred   Cred
		nosuid bool
		want   func(NewCred) NewCred
		note   string
	}{
		{"applied", user, false, func(n NewCred) NewCred { n.FileCaps, n.Secure, n.PerClear = true, true, true; return n }, ""},
		{"nosuid", user, true, func(n NewCred) NewCred { n.CapsIgnored = "nosuid mount"; return n }, "file capabilities not applied: nosuid mount"},
		{"no_new_privs", Cred{UID: 1000, EUID: 1000, GID: 100, EGID: 100, NoNewPrivs: true}, false,
			func(n NewCred) NewCred { n.CapsIgnored, n.Secure, n.PerClear = "no_new_privs", true, true; return n }, "file capabilities not applied: no_new_privs"},
		{"root", Cred{}, false, func(NewCred) NewCred { return NewCred{} }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			epp := &Package{Req: &Request{Cred: tc.cred}, Attr: Attr{Mode: 0o755, Caps: caps, NoSuid: tc.nosuid}}
			got, want := newCred(epp), tc.want(same)
			if got != want {
				t.Errorf("got %+v\nwant %+v", got, want)
			}
			if got.IgnoredNote() != tc.note {
				t.Errorf("note %q, want %q", got.IgnoredNote(), tc.note)
			}
		})
	}
}
