package script

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/uexec/uexec/execsw"
	"github.com/uexec/uexec/stack"
	"golang.org/x/sys/unix"
)

// stub is a handler for files starting with "STUB": the end of a #! chain.
type stub struct{ seen *[]string }

func (stub) Name() string    { return "stub" }
func (stub) HeaderSize() int { return 4 }
func (s stub) MakeCmds(epp *execsw.Package) error {
	if !bytes.HasPrefix(epp.Hdr, []byte("STUB")) {
		return unix.ENOEXEC
	}
	*s.seen = append(*s.seen, epp.Path)
	epp.Chain = append(epp.Chain, execsw.Link{Format: "stub", Path: epp.Path})
	return nil
}

func TestMakeCmds(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the switch's permission checks are set up for root here")
	}
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	interp := write("interp", "STUB")
	write("s1", "#!"+interp+" -a b\n")
	write("s2", "#!"+filepath.Join(dir, "s1")+"\n")
	write("self", "#!"+filepath.Join(dir, "self")+"\n")
	write("nointerp", "#!"+filepath.Join(dir, "missing")+"\n")
	write("noexec", "#!\n")
	write("plain", "STUB")
	prev := interp
	for _, n := range []string{"c1", "c2", "c3", "c4", "c5", "c6"} {
		prev = write(n, "#!"+prev+"\n")
	}

	for _, tc := range []struct {
		name      string
		path      string
		argv      []string
		cloexec   bool
		wantArgv  []string
		wantChain []string
		err       error
	}{
		{name: "script", path: "./s1", argv: []string{"s1", "x"},
			wantArgv: []string{interp, "-a b", "./s1", "x"}, wantChain: []string{"script:./s1", "stub:" + interp}},
		{name: "nested", path: filepath.Join(dir, "s2"), argv: []string{"s2"},
			wantArgv:  []string{interp, "-a b", filepath.Join(dir, "s1"), filepath.Join(dir, "s2")},
			wantChain: []string{"script:" + filepath.Join(dir, "s2"), "script:" + filepath.Join(dir, "s1"), "stub:" + interp}},
		{name: "not a script", path: "plain", argv: []string{"p"}, wantArgv: []string{"p"}, wantChain: []string{"stub:plain"}},
		{name: "five levels", path: filepath.Join(dir, "c5"), argv: []string{"c"}, wantArgv: []string{interp,
			filepath.Join(dir, "c1"), filepath.Join(dir, "c2"), filepath.Join(dir, "c3"), filepath.Join(dir, "c4"), filepath.Join(dir, "c5")}},
		{name: "six levels", path: filepath.Join(dir, "c6"), argv: []string{"c"}, err: unix.ELOOP},
		{name: "self", path: "self", argv: []string{"s"}, err: unix.ELOOP},
		{name: "missing interpreter", path: "nointerp", argv: []string{"n"}, err: unix.ENOENT},
		{name: "no interpreter name", path: "noexec", argv: []string{"n"}, err: unix.ENOEXEC},
		{name: "close-on-exec fd", path: "/dev/fd/3", argv: []string{"s"}, cloexec: true, err: unix.ENOENT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var seen []string
			sw := &execsw.Switch{}
			if err := sw.Add(Format{}, execsw.PrioAny); err != nil {
				t.Fatal(err)
			}
			if err := sw.Add(stub{&seen}, execsw.PrioAny); err != nil {
				t.Fatal(err)
			}
			req := &execsw.Request{Path: tc.path, Argv: tc.argv, Dir: dir, RlimitStack: 8 << 20}
			if tc.cloexec {
				f, err := os.Open(filepath.Join(dir, "s1"))
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				req.File, req.CloseOnExec = f, true
			}
			args, err := stack.NewArgs(tc.argv, nil, tc.path, req.RlimitStack)
			if err != nil {
				t.Fatal(err)
			}
			epp := &execsw.Package{Req: req, Sw: sw, Path: tc.path, Args: args}
			err = sw.CheckExec(epp)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(epp.Args.Argv, tc.wantArgv) {
				t.Errorf("argv %q, want %q", epp.Args.Argv, tc.wantArgv)
			}
			if tc.wantChain != nil {
				var chain []string
				for _, l := range epp.Chain {
					chain = append(chain, l.Format+":"+l.Path)
				}
				if !slices.Equal(chain, tc.wantChain) {
					t.Errorf("chain %q, want %q", chain, tc.wantChain)
				}
			}
			if len(tc.wantArgv) > 0 && tc.wantArgv[0] != tc.argv[0] {
				if epp.Flags&(execsw.FlagIndir|execsw.FlagHasArgl|execsw.FlagSkipArg|execsw.FlagDestr) !=
					execsw.FlagIndir|execsw.FlagHasArgl|execsw.FlagSkipArg|execsw.FlagDestr {
					t.Errorf("flags %b", epp.Flags)
				}
				if epp.Path != interp || len(seen) != 1 || seen[0] != interp {
					t.Errorf("path %q, stub saw %q", epp.Path, seen)
				}
			}
		})
	}
}
