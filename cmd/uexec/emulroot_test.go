package main

import (
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/uexec/uexec/internal/testelf"
	"github.com/uexec/uexec/internal/testenv"
)

// emulFixtures adds an emulation root to the golden fixtures: a PIE and
// its loader found only under goldenDir/emul, and a script there whose
// interpreter is that PIE.
func emulFixtures(t *testing.T) string {
	t.Helper()
	root := filepath.Join(goldenDir, "emul")
	for _, d := range []string{"bin", "lib"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ld, err := os.ReadFile(filepath.Join(goldenDir, "ld.so"))
	if err != nil {
		t.Fatal(err)
	}
	pie := &testelf.File{Type: elf.ET_DYN, Entry: 0x1100, Interp: "/lib/uexec-emul-ld.so", Progs: []testelf.Prog{
		{Type: elf.PT_LOAD, Flags: elf.PF_R | elf.PF_X, Off: 0, Vaddr: 0, Filesz: 0x1200, Memsz: 0x1200, Align: 0x1000},
		{Type: elf.PT_GNU_STACK, Flags: elf.PF_R | elf.PF_W},
	}}
	for name, b := range map[string][]byte{
		"lib/uexec-emul-ld.so": ld,
		"bin/uexec-emul-pie":   pie.Bytes(),
		"bin/uexec-emul-sh":    []byte("#!/bin/uexec-emul-pie -s\n"),
	} {
		p := filepath.Join(root, name)
		if err := os.WriteFile(p, b, 0o755); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, 0o755)
	}
	return root
}

func TestPlanEmulRoot(t *testing.T) {
	writeFixtures(t)
	root := emulFixtures(t)
	testHook = fixedMachine
	defer func() { testHook = nil }()

	out, errOut, code := runCLI(t, "plan", "-i", "--no-random", "--emul-root", root, "/bin/uexec-emul-sh", "a")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	got := normalise(out)
	file := filepath.Join("testdata", "emulroot.golden")
	if *update {
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	} else if want, err := os.ReadFile(file); err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	} else if got != string(want) {
		t.Errorf("output differs from %s (rerun with -update after checking):\n%s", file, testenv.LineDiff(string(want), got))
	}
	for _, line := range []string{
		"emulation root: " + root + "\n",
		"1. script  /bin/uexec-emul-sh (under the emulation root: " + root + "/bin/uexec-emul-sh)\n",
		"3. interp  /lib/uexec-emul-ld.so (under the emulation root: " + root + "/lib/uexec-emul-ld.so)\n",
		root + "/bin/uexec-emul-pie\n",
	} {
		if !strings.Contains(got, line) {
			t.Errorf("plan lacks %q", line)
		}
	}

	out, errOut, code = runCLI(t, "plan", "--json", "-i", "--no-random", "--emul-root", root+"/../emul/", "/bin/uexec-emul-pie")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var j struct {
		EmulRoot string `json:"emul_root"`
		Chain    []struct{ Format, Path, Host string }
		Interp   string
	}
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatal(err)
	}
	if j.EmulRoot != root {
		t.Errorf("emul_root %q, want %q (cleaned)", j.EmulRoot, root)
	}
	if len(j.Chain) != 2 || j.Chain[0].Host != root+"/bin/uexec-emul-pie" || j.Chain[1].Host != root+"/lib/uexec-emul-ld.so" ||
		j.Chain[1].Path != "/lib/uexec-emul-ld.so" || j.Interp != "/lib/uexec-emul-ld.so" {
		t.Errorf("chain %+v interp %q", j.Chain, j.Interp)
	}

	// Without the option, no emul_root key and no hosts.
	out, _, _ = runCLI(t, "plan", "--json", "-i", "--no-random", goldenDir+"/pie")
	if strings.Contains(out, `"emul_root"`) || strings.Contains(out, `"host"`) {
		t.Errorf("a plan without --emul-root has emul_root or host keys:\n%s", out)
	}
	// A file found in the real root is not marked.
	out, _, _ = runCLI(t, "plan", "--json", "-i", "--no-random", "--emul-root", root, goldenDir+"/pie")
	if !strings.Contains(out, `"emul_root": "`+root+`"`) || strings.Contains(out, `"host"`) {
		t.Errorf("a program in the real root under --emul-root:\n%s", out)
	}
}

func TestEmulRootUsage(t *testing.T) {
	writeFixtures(t)
	for _, tc := range []struct {
		name, dir, want string
	}{
		{"missing", goldenDir + "/nothing", "--emul-root " + goldenDir + "/nothing: no such file or directory"},
		{"not a directory", goldenDir + "/static", "--emul-root " + goldenDir + "/static: not a directory"},
	} {
		for _, cmd := range []string{"plan", "run"} {
			t.Run(tc.name+" "+cmd, func(t *testing.T) {
				_, errOut, code := runCLI(t, cmd, "--emul-root", tc.dir, "/bin/true")
				if code != exitUsage || !strings.Contains(errOut, tc.want) {
					t.Errorf("exit %d, stderr %q; want %d and %q", code, errOut, exitUsage, tc.want)
				}
			})
		}
	}
	if _, errOut, code := runCLI(t, "plan", "--emul-root"); code != exitUsage || !strings.Contains(errOut, "needs a value") {
		t.Errorf("--emul-root without a value: exit %d, %q", code, errOut)
	}
}

// muslRoot builds an emulation root that only it can run from: a musl
// program whose dynamic linker has a name of its own, both present only
// under the root, and a script there whose interpreter is that program.
func muslRoot(t *testing.T) (root, prog, script string) {
	t.Helper()
	muslGCC := testenv.NeedTool(t, "musl-gcc")
	ldso, err := filepath.EvalSymlinks("/lib/ld-musl-x86_64.so.1")
	testenv.Need(t, err == nil, "musl's dynamic linker: %v", err)
	prog, script = "/bin/uexec-test-hello", "/bin/uexec-test-script"
	const ld = "/lib/ld-uexec-test.so.1"
	for _, p := range []string{prog, script, ld} {
		if _, err := os.Lstat(p); err == nil {
			t.Fatalf("%s exists in the real root: the test needs it only under the emulation root", p)
		}
	}
	root = filepath.Join(testenv.SharedTempDir(t), "emul")
	for _, d := range []string{"bin", "lib"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(root, 0o755)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cc := exec.CommandContext(ctx, muslGCC, "-O1", "-Wl,--dynamic-linker="+ld, "-o", filepath.Join(root, prog), "testdata/progs/hello.c")
	if b, err := cc.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", cc.Args, err, b)
	}
	b, err := os.ReadFile(ldso)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, ld), b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, script), []byte("#!"+prog+" -x\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return root, prog, script
}

// TestRunEmulRoot: a program, its dynamic linker and a script found only
// under the emulation root run under `uexec run --emul-root` as under
// chroot (same stdout and exit status; the script's interpreter gets the
// script by its name in the real root), as root and as uid 65534, in tree
// mode and with --once; a child the tree execs gets the root too.
func TestRunEmulRoot(t *testing.T) {
	needRun(t)
	setpriv := testenv.NeedTool(t, "setpriv")
	chroot := testenv.NeedTool(t, "chroot")
	root, prog, script := muslRoot(t)
	shared := filepath.Dir(root)
	bin := filepath.Join(shared, "uexec")
	b, err := os.ReadFile(uexecBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	// A shell script in the real root that execs the program by its
	// absolute name: only the tree's emulation root finds it.
	tree := filepath.Join(shared, "tree.sh")
	if err := os.WriteFile(tree, []byte("#!/bin/sh\n"+prog+" child \"$@\"\necho status $?\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(tree, 0o755)

	user := []string{setpriv, "--reuid", "65534", "--regid", "65534", "--clear-groups", "--"}
	native := func(argv ...string) result { return runCmd(t, "", "/", append([]string{chroot, root}, argv...)...) }
	cases := []struct {
		name string
		argv []string
		want result
	}{
		{"program", []string{prog, "one", "two words"}, native(prog, "one", "two words")},
		{"script", []string{script, "arg"}, native(script, "arg")},
	}
	// The script's name its interpreter gets is its file's name in the
	// caller's root (the interpreter opens it there, not under DIR),
	// where chroot's interpreter gets the name as given.
	cases[1].want.stdout = strings.Replace(cases[1].want.stdout, " ["+script+"] ", " ["+root+script+"] ", 1)
	child := native(prog, "child", "x")
	child.stdout += "status 0\n"
	if child.status.ExitStatus() != 0 || !strings.HasPrefix(child.stdout, "hello tls=42 argc=3") {
		t.Fatalf("chroot run of %s: %v", prog, child)
	}
	for _, tc := range cases {
		if tc.want.status.ExitStatus() != 0 || !strings.HasPrefix(tc.want.stdout, "hello tls=42") {
			t.Fatalf("chroot run of %v: %v", tc.argv, tc.want)
		}
	}
	for _, who := range []struct {
		name   string
		prefix []string
	}{{"root", nil}, {"uid 65534", user}} {
		for _, mode := range [][]string{{"run"}, {"run", "--once"}} {
			for _, tc := range cases {
				argv := append(append(append(append([]string{}, who.prefix...), bin), mode...), append([]string{"--emul-root", root}, tc.argv...)...)
				got := runCmd(t, "", "/", argv...)
				if got.stdout != tc.want.stdout || got.status != tc.want.status {
					t.Errorf("%s, uexec %v: %v\nunder chroot:\n%v", who.name, mode, got, tc.want)
				}
			}
		}
		argv := append(append(append([]string{}, who.prefix...), bin), "run", "--emul-root", root, tree, "x")
		if got := runCmd(t, "", "/", argv...); got.stdout != child.stdout || got.status != child.status {
			t.Errorf("%s, a child of the tree: %v\nwant stdout:\n%s", who.name, got, child.stdout)
		}
	}
}

// TestEmulRootScriptIsDIRs: a script found under the emulation root runs
// as DIR's file even where the real root has another file of that name: its
// interpreter, which opens the script itself outside DIR, gets DIR's file
// by its name in the real root. So the bytes that run are the ones planned
// and, with --veriexec, verified: at strict 3, listing DIR's script only,
// it runs. As root and as uid 65534, in tree mode and with --once.
func TestEmulRootScriptIsDIRs(t *testing.T) {
	needRun(t)
	dir, bin := sharedUexec(t)
	emul := filepath.Join(dir, "emul")
	name := filepath.Join(dir, "s.sh")
	host := emul + name
	writeFile(t, name, "#!/bin/sh\necho REAL\n", 0o755)
	writeFile(t, host, "#!/bin/sh\necho DIR \"$0\"\n", 0o755)
	// Listed: DIR's script, and /bin/sh and its loader as interpreters.
	var sigs strings.Builder
	for _, e := range [][2]string{{host, "direct"}, {"/bin/sh", "indirect"}, {"/lib64/ld-linux-x86-64.so.2", "indirect"}} {
		p, err := filepath.EvalSymlinks(e[0])
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&sigs, "%s sha256 %x %s\n", p, sha256.Sum256(b), e[1])
	}
	sigsFile := filepath.Join(dir, "sigs")
	writeFile(t, sigsFile, sigs.String(), 0o644)
	for _, user := range [][]string{nil, asNobody(t)} {
		for _, mode := range [][]string{{"run"}, {"run", "--once"}, {"run", "--veriexec", sigsFile, "--veriexec-strict", "3"}} {
			argv := append(append(append(append([]string{}, user...), bin), mode...), "--emul-root", emul, name)
			r := runCmd(t, "", "/", argv...)
			if want := "DIR " + host + "\n"; r.stdout != want || r.status != 0 {
				t.Errorf("%v: %v, want stdout %q", argv, r, want)
			}
		}
	}
}
