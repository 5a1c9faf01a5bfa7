package main

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/uexec/uexec/execsw"
	"github.com/uexec/uexec/internal/testelf"
	"github.com/uexec/uexec/internal/testenv"
	"github.com/uexec/uexec/stack"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// goldenDir is fixed, not a t.TempDir, because the path's length shapes
// the stack (AT_EXECFN) and so every address in a plan.
const goldenDir = "/tmp/uexec-golden"

// fixedMachine makes plans independent of the machine and the user.
func fixedMachine(req *execsw.Request) {
	req.Host = &stack.Host{
		HWCap: 0x178bfbff, HWCap2: 0x2, MinSigStkSz: 3376, HasMinSigStkSz: true, ClkTck: 100,
		RseqFeatureSize: 28, RseqAlign: 32, HasRseq: true,
		VvarLen: 0x6000, VDSOLen: 0x2000,
		VDSORegions: []stack.VDSORegion{
			{Off: 0, Len: 0x4000, Perms: "r--p", Label: "[vvar]"},
			{Off: 0x4000, Len: 0x2000, Perms: "r--p", Label: "[vvar_vclock]"},
			{Off: 0x6000, Len: 0x2000, Perms: "r-xp", Label: "[vdso]"},
		},
	}
	req.Cred = execsw.Cred{UID: 1000, EUID: 1000, SUID: 1000, FSUID: 1000, GID: 1000, EGID: 1000, SGID: 1000, FSGID: 1000}
	req.RlimitStack = 8 << 20
	req.Downgrade = true
}

func writeFixtures(t *testing.T) {
	t.Helper()
	os.RemoveAll(goldenDir)
	if err := os.MkdirAll(goldenDir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(goldenDir) })
	write := func(name string, b []byte, mode os.FileMode) {
		p := filepath.Join(goldenDir, name)
		if err := os.WriteFile(p, b, mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
	}
	write("static", testelf.Static64().Bytes(), 0o755)
	// A loader (ET_DYN without PT_INTERP) and a PIE that names it.
	ld := &testelf.File{Type: elf.ET_DYN, Entry: 0x1200, Progs: []testelf.Prog{
		{Type: elf.PT_LOAD, Flags: elf.PF_R | elf.PF_X, Off: 0, Vaddr: 0, Filesz: 0x1300, Memsz: 0x1300, Align: 0x1000},
		{Type: elf.PT_LOAD, Flags: elf.PF_R | elf.PF_W, Off: 0x2000, Vaddr: 0x2000, Filesz: 0x100, Memsz: 0x2100, Align: 0x1000, Data: make([]byte, 0x100)},
	}, Blobs: []testelf.Blob{{Off: 0x1200, Data: testelf.PauseCode}}}
	write("ld.so", ld.Bytes(), 0o755)
	pie := &testelf.File{Type: elf.ET_DYN, Entry: 0x1100, Interp: goldenDir + "/ld.so", Progs: []testelf.Prog{
		{Type: elf.PT_LOAD, Flags: elf.PF_R, Off: 0, Vaddr: 0, Filesz: 0x800, Memsz: 0x800, Align: 0x1000},
		{Type: elf.PT_LOAD, Flags: elf.PF_R | elf.PF_X, Off: 0x1000, Vaddr: 0x1000, Filesz: 0x200, Memsz: 0x200, Align: 0x1000},
		{Type: elf.PT_LOAD, Flags: elf.PF_R | elf.PF_W, Off: 0x2000, Vaddr: 0x3000, Filesz: 0x80, Memsz: 0x1080, Align: 0x1000, Data: make([]byte, 0x80)},
		{Type: elf.PT_GNU_STACK, Flags: elf.PF_R | elf.PF_W},
	}}
	write("pie", pie.Bytes(), 0o755)
	write("script", []byte("#!"+goldenDir+"/pie -x  y\necho hi\n"), 0o755)
	write("noexec", []byte("#!/bin/sh\n"), 0o644)
	write("garbage", []byte("\x7fELF but not really"), 0o755)
	write("noshell", []byte("#!"+goldenDir+"/missing\n"), 0o755)
	write("crlf", []byte("#!"+goldenDir+"/missing\r\necho hi\r\n"), 0o755)
	// PT_INTERP past the file's end: the read is short (EIO).
	short := pie.Bytes()
	write("short", short[:bytes.Index(short, []byte(pie.Interp))+3], 0o755)
}

// normalise hides what differs between machines and runs: device and inode
// numbers of the fixtures, and the padding after them (the maps lines pad
// the name to a column, so a shorter inode number means more spaces).
var devIno = regexp.MustCompile(` [0-9a-f]{2,}:[0-9a-f]{2,} [0-9]+ +`)

func normalise(s string) string { return devIno.ReplaceAllString(s, " xx:xx 0 ") }

func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(strings.NewReader(""), &o, &e, args)
	return o.String(), e.String(), code
}

func TestPlanGolden(t *testing.T) {
	writeFixtures(t)
	testHook = fixedMachine
	defer func() { testHook = nil }()
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"static", []string{"plan", "-i", "--no-random", goldenDir + "/static", "one", "two"}},
		{"static.json", []string{"plan", "--json", "-i", "--no-random", "A=1", goldenDir + "/static"}},
		{"pie", []string{"plan", "-i", "--no-random", "HOME=/", goldenDir + "/pie"}},
		{"pie.json", []string{"plan", "--json", "-i", "--no-random", goldenDir + "/pie", "x"}},
		{"script", []string{"plan", "-i", "--no-random", goldenDir + "/script", "arg"}},
		{"missing.json", []string{"plan", "--json", "-i", "--no-random", goldenDir + "/nothing"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, _ := runCLI(t, tc.args...)
			got := normalise(out + errOut)
			file := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("output differs from %s (rerun with -update after checking):\n%s", file, testenv.LineDiff(string(want), got))
			}
		})
	}
}

func TestPlanFailures(t *testing.T) {
	writeFixtures(t)
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"missing", []string{"plan", goldenDir + "/nothing"}, 127, "uexec: " + goldenDir + "/nothing: lookup: no such file or directory (ENOENT)\n"},
		{"not in PATH", []string{"plan", "PATH=" + goldenDir, "no-such-program"}, 127, "(ENOENT)"},
		{"not executable", []string{"plan", goldenDir + "/noexec"}, 126, "(EACCES)"},
		{"directory", []string{"plan", goldenDir}, 126, "is a directory: permission denied (EACCES)"},
		// The kernel's verdict; execvp (and run) would give it to /bin/sh.
		{"bad ELF", []string{"plan", goldenDir + "/garbage"}, 126, "(ENOEXEC)\nuexec: note: execvp(3), env(1) and 'uexec run' hand"},
		{"bad binfmt rule", []string{"plan", "--binfmt", ":a:E::x::/p:Q", "/bin/true"}, 125, `binfmt rule ":a:E::x::/p:Q"`},
		{"binfmt rule twice", []string{"plan", "--binfmt", ":a:E::x::/p:", "--binfmt", ":a:E::y::/p:", "/bin/true"}, 125, "(EEXIST)"},
		{"binfmt F without interpreter", []string{"plan", "--binfmt", ":a:E::x::" + goldenDir + "/nothing:F", "/bin/true"}, 125, "(ENOENT)"},
		{"binfmt missing dir", []string{"plan", "--binfmt-dir", goldenDir + "/nothing", "/bin/true"}, 125, "(ENOENT)"},
		{"missing interpreter", []string{"plan", goldenDir + "/noshell"}, 127, goldenDir + "/missing"},
		// A CRLF script's interpreter ends in a CR, which a terminal
		// would act on: the name is quoted.
		{"CR in the interpreter's name", []string{"plan", goldenDir + "/crlf"}, 127, "uexec: " + goldenDir + "/crlf: \"" + goldenDir + "/missing\\r\": lookup: no such file or directory (ENOENT)\n"},
		// The program's name once, as the line's.
		{"short PT_INTERP", []string{"plan", goldenDir + "/short"}, 126, "uexec: " + goldenDir + "/short: elf: short read of PT_INTERP"},
		{"usage", []string{"plan"}, 125, "no program given"},
		{"help", []string{"plan", "--help"}, 0, ""},
		{"bad option", []string{"plan", "--bogus", "x"}, 125, "unknown option --bogus"},
		{"an option of run", []string{"plan", "--once", "/bin/true"}, 125, "--once is an option of run"},
		{"an option of plan", []string{"run", "--json", "/bin/true"}, 125, "--json is an option of plan"},
		{"bad chdir", []string{"plan", "-C", goldenDir + "/nothing", "/bin/true"}, 125, "cannot change directory to '" + goldenDir + "/nothing': no such file or directory (ENOENT)"},
		{"chdir to a file", []string{"run", "-C", "/etc/passwd", "/bin/true"}, 125, "(ENOTDIR)"},
		// An option's missing or empty value, a value to a flag: usage
		// errors, never the option left out.
		{"stop-at-exec without a glob", []string{"run", "--stop-at-exec"}, 125, "--stop-at-exec needs a value"},
		{"empty log name", []string{"run", "--log-execs", "", "/bin/true"}, 125, "--log-execs '': no such file or directory (ENOENT)"},
		{"empty emulation root", []string{"plan", "--emul-root", "", "/bin/true"}, 125, "--emul-root '': no such file or directory (ENOENT)"},
		// An empty signatures file's name must not turn verification off.
		{"empty veriexec file", []string{"run", "--veriexec", "", "/bin/true"}, 125, "--veriexec '': no such file or directory (ENOENT)"},
		{"empty veriexec file to plan", []string{"plan", "--veriexec", "", "/bin/true"}, 125, "--veriexec '': no such file or directory (ENOENT)"},
		{"empty veriexec file, strict", []string{"run", "--veriexec-strict", "3", "--veriexec", "", "/bin/true"}, 125, "--veriexec '': no such file or directory (ENOENT)"},
		{"empty binfmt dir", []string{"plan", "--binfmt-dir", "", "/bin/true"}, 125, "--binfmt-dir '': no such file or directory (ENOENT)"},
		{"empty veriexec learn file", []string{"run", "--veriexec-learn", "", "/bin/true"}, 125, "--veriexec-learn '': no such file or directory (ENOENT)"},
		{"a flag's value", []string{"run", "--once=x", "/bin/true"}, 125, "--once takes no value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := runCLI(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit status %d, want %d (stderr %q)", code, tc.code, errOut)
			}
			if !strings.Contains(errOut, tc.stderr) {
				t.Errorf("stderr %q does not contain %q", errOut, tc.stderr)
			}
		})
	}
}

func TestPlanJSONSchema(t *testing.T) {
	writeFixtures(t)
	out, errOut, code := runCLI(t, "plan", "--json", "--no-random", goldenDir+"/script", "a")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var j map[string]any
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"chain", "entry", "interp", "vmcmds", "maps", "stack", "auxv"} {
		if _, ok := j[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	if _, ok := j["error"]; ok {
		t.Errorf("a successful plan has an error field")
	}
	chain := j["chain"].([]any)
	var formats []string
	for _, l := range chain {
		formats = append(formats, l.(map[string]any)["format"].(string))
	}
	if got := strings.Join(formats, ","); got != "script,elf,interp" {
		t.Errorf("chain %s, want script,elf,interp", got)
	}
	vc := j["vmcmds"].([]any)[0].(map[string]any)
	for _, k := range []string{"op", "addr", "len", "prot", "offset", "file", "flags"} {
		if _, ok := vc[k]; !ok {
			t.Errorf("vm command lacks %q", k)
		}
	}
	if a := j["auxv"].([]any)[0].(map[string]any); a["type"] != "AT_SYSINFO_EHDR" {
		t.Errorf("first auxv entry %v", a)
	}
	st := j["stack"].(map[string]any)
	if st["argc"].(float64) != 4 || st["sp"] == "" {
		t.Errorf("stack %v", st)
	}
}

// Rules from a binfmt.d directory, systemd's way: the file a /dev/null
// link masks is not read, and the chain names the rule that matched.
func TestPlanBinfmtDir(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "binfmt.d")
	os.Mkdir(conf, 0o755)
	os.WriteFile(filepath.Join(conf, "a.conf"), []byte("# a rule\n:greet:E::greeting::/bin/echo:P\n"), 0o644)
	os.WriteFile(filepath.Join(conf, "b.conf"), []byte(":bad:X::x::/bin/echo:\n"), 0o644)
	os.Symlink("/dev/null", filepath.Join(conf, "c.conf"))
	target := filepath.Join(dir, "hello.greeting")
	os.WriteFile(target, nil, 0o755)
	_, errOut, code := runCLI(t, "plan", "--binfmt-dir", conf, target)
	if code != exitUsage || !strings.Contains(errOut, "b.conf:1") || !strings.Contains(errOut, "(EINVAL)") {
		t.Fatalf("a bad rule in b.conf: exit %d, stderr %q; want %d naming b.conf:1 and EINVAL", code, errOut, exitUsage)
	}
	os.Remove(filepath.Join(conf, "b.conf"))
	os.Symlink("/dev/null", filepath.Join(conf, "b.conf"))
	out, errOut, code := runCLI(t, "plan", "--json", "--binfmt-dir", conf, target, "x")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var j struct {
		Chain []execsw.Link
		Stack struct{ Argv []string }
	}
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatal(err)
	}
	if len(j.Chain) == 0 || j.Chain[0] != (execsw.Link{Format: "binfmt", Name: "greet", Path: target}) {
		t.Errorf("chain %+v, want the greet rule first", j.Chain)
	}
	if want := []string{"/bin/echo", target, target, "x"}; !slices.Equal(j.Stack.Argv, want) {
		t.Errorf("argv %q, want %q (P keeps argv[0])", j.Stack.Argv, want)
	}
}

// TestPlanStdinNoShellNote: a program from standard input that the kernel
// refuses with ENOEXEC gets no note of a /bin/sh fallback, which run does
// not make for it (no name for the shell to read); a named file does.
func TestPlanStdinNoShellNote(t *testing.T) {
	var o, e bytes.Buffer
	code := run(strings.NewReader("echo hi\n"), &o, &e, []string{"plan", "-"})
	if code != exitCannot || !strings.Contains(e.String(), "(ENOEXEC)") || strings.Contains(e.String(), "/bin/sh") {
		t.Errorf("plan - of a text: exit %d, stderr %q; want 126, ENOEXEC and no /bin/sh note", code, e.String())
	}
	writeFixtures(t)
	if _, errOut, _ := runCLI(t, "plan", goldenDir+"/garbage"); !strings.Contains(errOut, "to /bin/sh") {
		t.Errorf("plan of a named file the kernel refuses: stderr %q, want the /bin/sh note", errOut)
	}
}
