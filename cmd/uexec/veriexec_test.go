package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/uexec/uexec/internal/testenv"
)

// veriexecTree makes a tree to learn: a script that runs two copied
// programs and the shell itself, then "$@".
func veriexecTree(t *testing.T) (dir, tree string) {
	t.Helper()
	dir = testenv.SharedTempDir(t)
	dir, _ = filepath.EvalSymlinks(dir)
	for name, src := range map[string]string{"prog1": "/bin/true", "prog2": "/bin/echo", "unlisted": "/bin/true"} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	tree = filepath.Join(dir, "tree.sh")
	script := "#!/bin/sh\n" + dir + "/prog1 && echo one\n" + dir + "/prog2 two\n/bin/sh -c 'echo three'\n" +
		"if [ $# -gt 0 ]; then \"$@\"; echo \"st=$?\"; fi\n"
	if err := os.WriteFile(tree, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, tree
}

// TestVeriexec learns a tree's signatures, then enforces them at each
// strict level, as root and as an ordinary user.
func TestVeriexec(t *testing.T) {
	needRun(t)
	dir, tree := veriexecTree(t)
	sigs := filepath.Join(dir, "sigs")
	r := runLimited(t, "learn", nil, "/", uexecBin, "run", "--build", "--veriexec-learn", sigs, tree)
	if r.status != 0 || r.stdout != "one\ntwo\nthree\n" {
		t.Fatalf("learning run: %v", r)
	}
	learned, err := os.ReadFile(sigs)
	if err != nil {
		t.Fatal(err)
	}
	sh, _ := filepath.EvalSymlinks("/bin/sh")
	ld, _ := filepath.EvalSymlinks("/lib64/ld-linux-x86-64.so.2")
	for _, want := range []string{
		tree + " SHA256 [0-9a-f]{64} direct\n",
		dir + "/prog1 SHA256 [0-9a-f]{64} direct\n",
		dir + "/prog2 SHA256 [0-9a-f]{64} direct\n",
		sh + " SHA256 [0-9a-f]{64} direct,indirect\n", // tree.sh's interpreter, and sh -c
		ld + " SHA256 [0-9a-f]{64} indirect\n",
	} {
		if !regexp.MustCompile("(?m)^" + regexp.QuoteMeta(strings.SplitN(want, " ", 2)[0]) + " " + strings.SplitN(want, " ", 2)[1]).Match(learned) {
			t.Errorf("learned signatures lack %q:\n%s", want, learned)
		}
	}
	if strings.Contains(string(learned), "/unlisted") {
		t.Errorf("learned a file not exec'd:\n%s", learned)
	}

	// A copy of uexec and a log directory an ordinary user can reach.
	bin := filepath.Join(dir, "uexec")
	b, err := os.ReadFile(uexecBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	logs := filepath.Join(dir, "logs")
	os.Mkdir(logs, 0o777)
	os.Chmod(logs, 0o777)
	users := []struct {
		name   string
		prefix []string
	}{{"root", nil}, {"nobody", asNobody(t)}}
	for _, u := range users {
		t.Run(u.name, func(t *testing.T) {
			run := func(args ...string) result {
				t.Helper()
				return runLimited(t, "veriexec", nil, "/", append(append(append([]string{}, u.prefix...), bin, "run"), args...)...)
			}
			if r := run("--veriexec", sigs, tree); r.status != 0 || r.stdout != "one\ntwo\nthree\n" || r.stderr != "" {
				t.Fatalf("the learned tree under --veriexec: %v", r)
			}
			// Refused at IPS (the default): the caller's execve gets
			// EPERM, and sh says so as it does natively.
			for i, tc := range []struct{ name, prog, msg string }{
				{"unlisted", dir + "/unlisted", "no fingerprint listed"},
				{"indirect only, exec'd directly", ld, "incorrect access type"},
			} {
				log := filepath.Join(logs, u.name+strconv.Itoa(i))
				r := run("--veriexec", sigs, "--log-execs", log, tree, tc.prog, "--version")
				if r.status != 0 || !strings.HasSuffix(r.stdout, "st=126\n") || !strings.Contains(r.stderr, tc.prog+": Operation not permitted") {
					t.Errorf("%s: %v", tc.name, r)
				}
				if !logHas(t, log, "EPERM", "veriexec: "+tc.msg) {
					t.Errorf("%s: the exec log does not say why", tc.name)
				}
			}
			if r := run("--veriexec", sigs, "--veriexec-strict", "1", tree, dir+"/unlisted"); r.status != 0 || !strings.HasSuffix(r.stdout, "st=0\n") {
				t.Errorf("unlisted at IDS runs: %v", r)
			}
		})
	}

	// A modified program: refused from IDS on, reported at 0.
	if err := os.WriteFile(dir+"/prog1", []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, strict := range []string{"1", "2", "3"} {
		log := filepath.Join(t.TempDir(), "log")
		r := runLimited(t, "modified", nil, "/", uexecBin, "run", "--build", "--veriexec", sigs, "--veriexec-strict", strict, "--log-execs", log, tree)
		if r.stdout != "two\nthree\n" || !strings.Contains(r.stderr, dir+"/prog1: Operation not permitted") {
			t.Errorf("strict %s, modified program: %v", strict, r)
		}
		if !logHas(t, log, "EPERM", "veriexec: fingerprint mismatch") {
			t.Errorf("strict %s: the exec log does not say why", strict)
		}
	}
	r = runLimited(t, "learning", nil, "/", uexecBin, "run", "--build", "--veriexec", sigs, "--veriexec-strict", "0", tree)
	if r.status != 0 || r.stdout != "one\ntwo\nthree\n" || !strings.Contains(r.stderr, "veriexec: "+dir+"/prog1: fingerprint mismatch") {
		t.Errorf("strict 0, modified program runs and is reported: %v", r)
	}
}

func logHas(t *testing.T, log, result, msg string) bool {
	t.Helper()
	for _, l := range readExecLog(t, log) {
		if l.Result == result && strings.Contains(l.Error, msg) {
			return true
		}
	}
	return false
}

// TestVeriexecUsage: malformed signatures files and option combinations
// are usage errors (125) naming the file and line; plan shows a refusal
// as the plan's error.
func TestVeriexecUsage(t *testing.T) {
	dir := t.TempDir()
	good := "/bin/true SHA256 " + strings.Repeat("ab", 32) + "\n"
	for _, tc := range []struct{ name, line, msg string }{
		{"unknown type", "/bin/true FOO 00", "unknown fingerprint type"},
		{"wrong length", "/bin/true SHA256 abcd", "4 hex digits, want 64"},
		{"not hex", "/bin/true SHA256 " + strings.Repeat("zz", 32), "not hex"},
		{"relative path", "bin/true SHA256 " + strings.Repeat("ab", 32), "not absolute"},
		{"unknown flag", "/bin/true SHA256 " + strings.Repeat("ab", 32) + " direct,setuid", "unknown flag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sigs := filepath.Join(dir, "sigs")
			os.WriteFile(sigs, []byte("# comment\n"+good+tc.line+"\n"), 0o644)
			for _, cmd := range []string{"run", "plan"} {
				r := runLimited(t, tc.name, nil, "/", uexecBin, cmd, "--veriexec", sigs, "/bin/true")
				if r.status.ExitStatus() != exitUsage || !strings.Contains(r.stderr, sigs+":3: ") || !strings.Contains(r.stderr, tc.msg) {
					t.Errorf("%s: %v", cmd, r)
				}
			}
		})
	}
	sigs := filepath.Join(dir, "sigs")
	os.WriteFile(sigs, []byte(good), 0o644)
	for _, args := range [][]string{
		{"run", "--veriexec-strict", "2", "/bin/true"},
		{"run", "--veriexec", sigs, "--veriexec-strict", "4", "/bin/true"},
		{"run", "--veriexec", sigs, "--once", "/bin/true"},
		{"run", "--veriexec", sigs, "--no-wait-descendants", "/bin/true"},
		{"run", "--veriexec", sigs, "--veriexec-learn", sigs + "2", "/bin/true"},
		{"plan", "--veriexec-learn", sigs + "2", "/bin/true"},
	} {
		if r := runLimited(t, "usage", nil, "/", append([]string{uexecBin}, args...)...); r.status.ExitStatus() != exitUsage {
			t.Errorf("%v: %v", args, r)
		}
	}
	r := runLimited(t, "plan", nil, "/", uexecBin, "plan", "--veriexec", sigs, "/bin/true")
	if r.status.ExitStatus() != exitCannot || !strings.Contains(r.stderr, "veriexec: fingerprint mismatch") || !strings.Contains(r.stderr, "(EPERM)") {
		t.Errorf("plan of a mismatching program: %v", r)
	}
	r = runLimited(t, "plan", nil, "/", uexecBin, "plan", "--json", "--veriexec", sigs, "/bin/true")
	if !strings.Contains(r.stdout, `"errno": "EPERM"`) || !strings.Contains(r.stdout, "veriexec: fingerprint mismatch") {
		t.Errorf("plan --json of a mismatching program: %v", r)
	}
}

// TestVeriexecVerboseRefusal: with --verbose, a policy's refusal of an
// exec of the tree is said on stderr, with the program and why.
func TestVeriexecVerboseRefusal(t *testing.T) {
	needRun(t)
	dir := t.TempDir()
	sigs := filepath.Join(dir, "sigs")
	if r := runLimited(t, "learn", nil, "/", uexecBin, "run", "--build", "--veriexec-learn", sigs, "/bin/sh", "-c", "true"); r.status != 0 {
		t.Fatalf("learning run: %v", r)
	}
	unlisted := filepath.Join(dir, "unlisted")
	copyFile(t, "/bin/true", unlisted, 0o755)
	r := runLimited(t, "enforce", nil, "/", uexecBin, "run", "--build", "-v", "--veriexec", sigs, "/bin/sh", "-c", unlisted+"; echo rc=$?")
	if !strings.Contains(r.stdout, "rc=126") || !strings.Contains(r.stderr, ": "+unlisted+": refused: ") || !strings.Contains(r.stderr, "no fingerprint listed") {
		t.Errorf("an unlisted program under -v: %v", r)
	}
}

// TestVeriexecLoadWarnings: an entry whose path names nothing, or names no
// regular file, is a warning naming FILE:LINE when the signatures are
// loaded (veriexecctl load warns of both), and the run goes on with the
// entries that do name files.
func TestVeriexecLoadWarnings(t *testing.T) {
	needRun(t)
	dir := t.TempDir()
	sigs := filepath.Join(dir, "sigs")
	if r := runLimited(t, "learn", nil, "/", uexecBin, "run", "--build", "--veriexec-learn", sigs, "/bin/true"); r.status != 0 {
		t.Fatalf("learning run: %v", r)
	}
	learned, err := os.ReadFile(sigs)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^/\S+ SHA256 ([0-9a-f]{64})`).FindSubmatch(learned)
	if m == nil {
		t.Fatalf("no entry learned: %s", learned)
	}
	fp := string(m[1])
	extra := dir + "/gone SHA256 " + fp + "\n" + dir + " SHA256 " + fp + "\n"
	if err := os.WriteFile(sigs, append(learned, extra...), 0o644); err != nil {
		t.Fatal(err)
	}
	n := strings.Count(string(learned), "\n")
	r := runLimited(t, "enforce", nil, "/", uexecBin, "run", "--build", "--veriexec", sigs, "/bin/true")
	for _, want := range []string{
		"uexec: warning: --veriexec " + sigs + ":" + strconv.Itoa(n+1) + ": " + dir + "/gone: no such file or directory (ENOENT)",
		"uexec: warning: --veriexec " + sigs + ":" + strconv.Itoa(n+2) + ": " + dir + " is not a regular file",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q: %v", want, r)
		}
	}
	if r.status != 0 || strings.Count(r.stderr, "\n") != 2 {
		t.Errorf("the listed program under the signatures with two warnings: %v", r)
	}
}
