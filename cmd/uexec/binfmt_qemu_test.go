package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uexec/uexec/internal/testenv"
)

// Foreign binaries through the system's binfmt.d rules, by the kernel (the
// rule registered in a namespace of its own) and by `uexec run
// --binfmt-system` without binfmt_misc.

// busyboxEnv names busybox-static:arm64 for the tests: its .deb, the tree
// dpkg -x unpacked it into, or the binary. .ci/run sets it.
const busyboxEnv = "UEXEC_ARM64_BUSYBOX"

// arm64Busybox returns a copy of the arm64 busybox in a new directory that
// uid 65534 can reach.
func arm64Busybox(t *testing.T) (dir, busybox string) {
	t.Helper()
	src := os.Getenv(busyboxEnv)
	testenv.Need(t, src != "", "no arm64 busybox: set %s to busybox-static:arm64's .deb, its unpacked tree or the binary (.ci/run does)", busyboxEnv)
	fi, err := os.Stat(src)
	testenv.Need(t, err == nil, "%s=%s: %v", busyboxEnv, src, err)
	switch {
	case fi.IsDir():
		src = filepath.Join(src, "bin/busybox")
	case strings.HasSuffix(src, ".deb"):
		dpkg := testenv.NeedTool(t, "dpkg")
		tree := t.TempDir()
		if r := runLimited(t, "dpkg -x", nil, "/", dpkg, "-x", src, tree); r.status != 0 {
			t.Fatalf("dpkg -x %s: %v", src, r)
		}
		src = filepath.Join(tree, "bin/busybox")
	}
	dir = testenv.SharedTempDir(t)
	busybox = filepath.Join(dir, "busybox")
	copyFile(t, src, busybox, 0o755)
	return dir, busybox
}

// systemRule returns the rule of /usr/lib/binfmt.d/NAME.conf and skips if
// it or its interpreter is missing.
func systemRule(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("/usr/lib/binfmt.d/" + name + ".conf")
	testenv.Need(t, err == nil, "no binfmt.d rule %s (Debian's qemu-user-static and python3.11 install them): %v", name, err)
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || l[0] == '#' || l[0] == ';' {
			continue
		}
		f := strings.Split(l, l[:1])
		testenv.Need(t, len(f) >= 8, "rule %q", l)
		_, err := os.Stat(f[6])
		testenv.Need(t, err == nil, "the interpreter of %s: %v", name, err)
		return l
	}
	testenv.Need(t, false, "no rule in %s.conf", name)
	return ""
}

type chainLogLine struct {
	Argv  []string `json:"argv"`
	Chain []struct {
		Format, Name, Path string
	} `json:"chain"`
	Result string `json:"result"`
	By     string `json:"by"`
}

func readChainLog(t *testing.T, name string) []chainLogLine {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []chainLogLine
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var l chainLogLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if bytes.Contains(sc.Bytes(), []byte(`"event":"exit"`)) {
			continue
		}
		out = append(out, l)
	}
	return out
}

// TestBinfmtQemuBusybox: an arm64 busybox shell whose children are arm64
// busybox too runs through qemu-aarch64's rule, every exec of the tree
// through the rule, as root and as uid 65534, as under the kernel's
// binfmt_misc.
func TestBinfmtQemuBusybox(t *testing.T) {
	p := binfmtProgs(t)
	rule := systemRule(t, "qemu-aarch64")
	dir, _ := arm64Busybox(t)
	logDir := filepath.Join(dir, "log")
	if err := os.Mkdir(logDir, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(logDir, 0o777)
	script := "echo hi; ./busybox uname -m; ./busybox ls /"
	for _, v := range binfmtUsers(t) {
		t.Run(v.who, func(t *testing.T) {
			kernel := kernelExec(t, p, dir, []string{rule}, v.ids, []string{"./busybox", "./busybox", "sh", "-c", script})
			if kernel.status != 0 || !strings.HasPrefix(kernel.stdout, "hi\naarch64\n") {
				t.Fatalf("the kernel's binfmt_misc did not run the arm64 busybox: %v", kernel)
			}
			log := filepath.Join(logDir, strings.ReplaceAll(v.who, " ", "-")+".jsonl")
			args := append(append([]string{}, v.prefix...), p.uexec, "run", "--binfmt-system", "--log-execs", log, "--", "./busybox", "sh", "-c", script)
			u := runLimited(t, "uexec run", nil, dir, args...)
			if asLaunch(u) != asLaunch(kernel) {
				t.Fatalf("uexec run --binfmt-system differs from the kernel:\n%s\nkernel:\n%v\nuexec:\n%v", testenv.LineDiff(asLaunch(kernel), asLaunch(u)), kernel, u)
			}
			// The shell and both children went through the rule.
			want := map[string]bool{"./busybox sh -c " + script: false, "./busybox uname -m": false, "./busybox ls /": false}
			lines := readChainLog(t, log)
			for _, l := range lines {
				argv := strings.Join(l.Argv, " ")
				if _, ok := want[argv]; !ok {
					continue
				}
				if len(l.Chain) == 0 || l.Chain[0].Format != "binfmt" || l.Chain[0].Name != "qemu-aarch64" || l.Chain[0].Path != "./busybox" || l.Result != "ok" {
					t.Errorf("exec of %q: result %s by %s, chain %+v; want ok with a first link {binfmt qemu-aarch64 ./busybox}", argv, l.Result, l.By, l.Chain)
				}
				want[argv] = true
			}
			for argv, seen := range want {
				if !seen {
					t.Errorf("no exec of %q in the log:\n%+v", argv, lines)
				}
			}
			// --once: the one program, in place.
			one := []string{"./busybox", "uname", "-m"}
			k1 := kernelExec(t, p, dir, []string{rule}, v.ids, append([]string{one[0]}, one...))
			u1 := runLimited(t, "uexec run --once", nil, dir, append(append(append([]string{}, v.prefix...), p.uexec, "run", "--once", "--binfmt-system", "--"), one...)...)
			if k1.stdout != "aarch64\n" || asLaunch(u1) != asLaunch(k1) {
				t.Errorf("busybox uname -m: kernel %v\nuexec run --once %v", k1, u1)
			}
		})
	}
}

// TestBinfmtPythonPyc: the system's python3.11 rule runs a compiled,
// executable .pyc file.
func TestBinfmtPythonPyc(t *testing.T) {
	p := binfmtProgs(t)
	rule := systemRule(t, "python3.11")
	dir := testenv.SharedTempDir(t)
	writeFile(t, dir+"/x.py", "import sys\nprint('pyc', sys.argv, sys.version_info[:2])\n", 0o644)
	if r := runLimited(t, "py_compile", nil, dir, "/usr/bin/python3.11", "-c", "import py_compile; py_compile.compile('x.py', cfile='x.pyc', doraise=True)"); r.status != 0 {
		t.Fatalf("py_compile: %v", r)
	}
	os.Chmod(dir+"/x.pyc", 0o755)
	for _, v := range binfmtUsers(t) {
		t.Run(v.who, func(t *testing.T) {
			kernel := kernelExec(t, p, dir, []string{rule}, v.ids, []string{"./x.pyc", "./x.pyc", "a"})
			if want := "pyc ['./x.pyc', 'a'] (3, 11)\n"; kernel.stdout != want {
				t.Fatalf("the kernel's binfmt_misc: %v, want %q", kernel, want)
			}
			for _, mode := range [][]string{{"run"}, {"run", "--once"}} {
				args := append(append(append(append([]string{}, v.prefix...), p.uexec), mode...), "--binfmt-system", "./x.pyc", "a")
				u := runLimited(t, "uexec", nil, dir, args...)
				if asLaunch(u) != asLaunch(kernel) {
					t.Errorf("uexec %s --binfmt-system ./x.pyc: %v\nkernel: %v", strings.Join(mode, " "), u, kernel)
				}
			}
		})
	}
}
