package stack

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func big(n int) string { return strings.Repeat("x", n) }

func bigs(count, n int) []string {
	s := make([]string, count)
	for i := range s {
		s[i] = big(n)
	}
	return s
}

func TestArgLimit(t *testing.T) {
	for _, tc := range []struct {
		rlim, want uint64
	}{
		{8 << 20, 2 << 20},
		{1 << 20, 256 << 10},
		{256 << 10, 128 << 10}, // floor ARG_MAX
		{0, 128 << 10},
		{64 << 20, 6 << 20}, // ceiling 6 MiB
		{RlimInfinity, 6 << 20},
	} {
		if got := ArgLimit(tc.rlim); got != tc.want {
			t.Errorf("ArgLimit(%d) = %d, want %d", tc.rlim, got, tc.want)
		}
	}
}

func TestNewArgs(t *testing.T) {
	const mib8 = 8 << 20
	for _, tc := range []struct {
		name   string
		argv   []string
		envp   []string
		execfn string
		rlim   uint64
		err    error  // nil: success
		reason string // substring of the error
		avail  int64  // checked when err == nil and avail != 0
	}{
		{name: "plain", argv: []string{"true"}, envp: []string{"A=1"}, execfn: "/bin/true", rlim: mib8,
			avail: 2<<20 - 2*8 - 5 - 4 - 10},
		// The reference's measurements: 15 arguments of 131072 bytes (with
		// the NUL) fit at 8 MiB, 16 do not; 1 at 1 MiB; 47 unlimited.
		{name: "15 max strings at 8MiB", argv: append([]string{"/bin/true"}, bigs(15, MaxArgStrLen-1)...), execfn: "/bin/true", rlim: mib8},
		{name: "16 max strings at 8MiB", argv: append([]string{"/bin/true"}, bigs(16, MaxArgStrLen-1)...), execfn: "/bin/true", rlim: mib8, err: unix.E2BIG, reason: "does not fit"},
		{name: "1 max string at 1MiB", argv: append([]string{"/bin/true"}, bigs(1, MaxArgStrLen-1)...), execfn: "/bin/true", rlim: 1 << 20},
		{name: "2 max strings at 1MiB", argv: append([]string{"/bin/true"}, bigs(2, MaxArgStrLen-1)...), execfn: "/bin/true", rlim: 1 << 20, err: unix.E2BIG},
		{name: "47 max strings unlimited", argv: append([]string{"/bin/true"}, bigs(47, MaxArgStrLen-1)...), execfn: "/bin/true", rlim: RlimInfinity},
		{name: "48 max strings unlimited", argv: append([]string{"/bin/true"}, bigs(48, MaxArgStrLen-1)...), execfn: "/bin/true", rlim: RlimInfinity, err: unix.E2BIG},
		{name: "string too long", argv: []string{"a", "b", "c", big(MaxArgStrLen)}, execfn: "x", rlim: mib8,
			err: unix.E2BIG, reason: "argument 3 is 131073 bytes, more than 131072"},
		{name: "env string too long", argv: []string{"a"}, envp: []string{big(200000)}, execfn: "x", rlim: mib8,
			err: unix.E2BIG, reason: "environment string 0 is 200001 bytes"},
		{name: "execfn too long", argv: []string{"a"}, execfn: big(MaxArgStrLen), rlim: mib8,
			err: unix.E2BIG, reason: "file name is 131073"},
		// Linux copies the file name, then env last to first, then argv
		// last to first: the first string that fails is reported.
		{name: "env checked before argv", argv: []string{big(MaxArgStrLen)}, envp: []string{big(MaxArgStrLen)}, execfn: "x", rlim: mib8,
			err: unix.E2BIG, reason: "environment string 0"},
		{name: "argv last to first", argv: []string{big(MaxArgStrLen), big(MaxArgStrLen)}, execfn: "x", rlim: mib8,
			err: unix.E2BIG, reason: "argument 1 "},
		{name: "pointers alone exhaust", argv: make([]string, 128<<10/8), execfn: "x", rlim: 0,
			err: unix.E2BIG, reason: "pointers"},
		{name: "pointers leave one byte short", argv: make([]string, 128<<10/8-1), execfn: "", rlim: 0,
			err: unix.E2BIG},
		{name: "exact fit", argv: make([]string, 7), execfn: "", rlim: 0, avail: 128<<10 - 7*8 - 8},
		{name: "NUL byte", argv: []string{"a\x00b"}, execfn: "x", rlim: mib8, err: unix.EINVAL},
		{name: "argc 0", argv: nil, envp: []string{"A=1"}, execfn: "/bin/true", rlim: mib8,
			avail: 2<<20 - 2*8 - 4 - 10 - 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := NewArgs(tc.argv, tc.envp, tc.execfn, tc.rlim)
			if tc.err != nil {
				if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.reason) {
					t.Fatalf("err = %v, want %v containing %q", err, tc.err, tc.reason)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.avail != 0 && a.Avail() != tc.avail {
				t.Errorf("Avail = %d, want %d", a.Avail(), tc.avail)
			}
			wantArgv := tc.argv
			if len(wantArgv) == 0 {
				wantArgv = []string{""}
			}
			if !slices.Equal(a.Argv, wantArgv) || !slices.Equal(a.Envp, tc.envp) || a.ExecFn != tc.execfn {
				t.Errorf("got %q %q %q", a.Argv, a.Envp, a.ExecFn)
			}
			if int64(ArgLimit(tc.rlim))-int64(len(a.Argv)+len(a.Envp))*8-int64(a.StringBytes()) != a.Avail() {
				t.Errorf("StringBytes %d and Avail %d disagree", a.StringBytes(), a.Avail())
			}
		})
	}
}

func TestNewArgsArgc0Budget(t *testing.T) {
	// The "" argv[0] of an empty argv is charged after everything else:
	// a budget that the other strings fill exactly leaves no room for it.
	budget := int(ArgLimit(1<<19)) - 2*8 // pointers: the "" argv[0] and one env
	env := big(budget - 2 - 1)           // "f\0" and the env NUL
	_, err := NewArgs(nil, []string{env}, "f", 1<<19)
	if !errors.Is(err, unix.E2BIG) || !strings.Contains(err.Error(), "argv[0]") {
		t.Errorf("full budget with argc 0: err = %v, want E2BIG for the empty argv[0]", err)
	}
	a, err := NewArgs([]string{}, []string{env[1:]}, "f", 1<<19)
	if err != nil {
		t.Fatalf("one byte spare with argc 0: %v", err)
	}
	if a.Avail() != 0 || len(a.Argv) != 1 || a.Argv[0] != "" {
		t.Errorf("Avail = %d, Argv = %q", a.Avail(), a.Argv)
	}
}

func TestRewrite(t *testing.T) {
	for _, tc := range []struct {
		name        string
		argv        []string
		interp, arg string
		hasArg      bool
		script      string
		want        []string
		err         error
	}{
		{name: "no arg", argv: []string{"s", "x", "y"}, interp: "/bin/sh", script: "./s",
			want: []string{"/bin/sh", "./s", "x", "y"}},
		{name: "arg", argv: []string{"s"}, interp: "/bin/sh", arg: "-e -x", hasArg: true, script: "/tmp/s",
			want: []string{"/bin/sh", "-e -x", "/tmp/s"}},
		{name: "empty arg", argv: []string{"s"}, interp: "i", arg: "", hasArg: true, script: "s",
			want: []string{"i", "", "s"}},
		{name: "argc 0 gets empty argv0 dropped", argv: nil, interp: "i", script: "s",
			want: []string{"i", "s"}},
		{name: "script path too long", argv: []string{"s"}, interp: "i", script: big(MaxArgStrLen), err: unix.E2BIG},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := NewArgs(tc.argv, []string{"E=1"}, "exe", 8<<20)
			if err != nil {
				t.Fatal(err)
			}
			before := a.Avail()
			err = a.Rewrite(tc.interp, tc.arg, tc.hasArg, tc.script)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(a.Argv, tc.want) {
				t.Errorf("argv = %q, want %q", a.Argv, tc.want)
			}
			old0 := ""
			if len(tc.argv) > 0 {
				old0 = tc.argv[0]
			}
			added := len(tc.interp) + 1 + len(tc.script) + 1
			if tc.hasArg {
				added += len(tc.arg) + 1
			}
			if got, want := a.Avail(), before+int64(len(old0)+1)-int64(added); got != want {
				t.Errorf("Avail = %d, want %d", got, want)
			}
		})
	}
}

func TestRewriteBudget(t *testing.T) {
	// Fill the budget to within n bytes, then rewrite: the argv[0] that is
	// dropped returns its bytes first, as remove_arg_zero does.
	a, err := NewArgs([]string{"abc"}, nil, "f", 0)
	if err != nil {
		t.Fatal(err)
	}
	a.avail = 0
	// Returns 4 bytes ("abc\0"); needs "i\0" + "s\0" = 4.
	if err := a.Rewrite("i", "", false, "s"); err != nil {
		t.Errorf("exact fit: %v", err)
	}
	a.avail = 0
	// Returns "i\0" (2); needs "ii\0" + "s\0" = 5.
	if err := a.Rewrite("ii", "", false, "s"); !errors.Is(err, unix.E2BIG) {
		t.Errorf("one over: err = %v, want E2BIG", err)
	}
}
