package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/internal/testenv"
)

// The kernel is the oracle of uexec's binfmt_misc rules: every case is run
// twice in the same directory, once by the kernel (testdata/binfmt/launch.c
// registers the rules in a binfmt_misc instance of its own user namespace,
// then execs) and once by uexec (`uexec run --binfmt RULE...` runs the same
// launcher without binfmt_misc, and `--once` execs the target itself), and
// the interpreter, testdata/binfmt/probe.c, prints what it observes: argv,
// AT_EXECFN, AT_EXECFD and its file, AT_FLAGS, AT_SECURE, the ids, exe,
// comm, dumpable, open descriptors. The outputs must be equal line by line.
//
// The kernel's namespace maps every id to itself (root writes the maps from
// outside), so the ids a program sees there are the host's: uexec runs
// outside any namespace, as the same user, and every field, ids included,
// is compared. (With --map-root-user the ids inside would be 0 whoever ran
// the test, and a set-uid-root file would be set-uid to an unmapped id.)
// Cases as uid 65534 register as root in that namespace and drop to 65534
// before the exec, as a user runs programs under rules root registered.

const binfmtDeadline = 30 * time.Second

// bfProgs are the test programs, reachable by uid 65534.
type bfProgs struct {
	dir           string // their shared directory
	probe, launch string
	static        string // a static x86-64 ELF of type ET_EXEC that prints "hello"
	uexec         string // a copy of the uexec under test
}

// closeInherited marks the descriptors the test binary inherited
// close-on-exec (Go leaves them open across os/exec), so that the programs
// of a case get only 0, 1 and 2 from it, as in CI.
var closeInherited sync.Once

func binfmtProgs(t *testing.T) *bfProgs {
	t.Helper()
	needRun(t)
	closeInherited.Do(func() { unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC) })
	dir := testenv.SharedTempDir(t)
	cp := func(src, name string) string { return copyExec(t, dir, src, name) }
	p := &bfProgs{
		dir:    dir,
		probe:  cp(testenv.BuildC(t, "testdata/binfmt/probe.c"), "probe"),
		launch: cp(testenv.BuildC(t, "testdata/binfmt/launch.c"), "launch"),
		static: cp(testenv.BuildC(t, "testdata/progs/hello.c", "-static"), "hello-static"),
		uexec:  cp(uexecBin, "uexec"),
	}
	// The oracle needs a binfmt_misc instance per user namespace (Linux 6.7).
	r := runLimited(t, "kernel", identityNS(), "/", p.launch, "-b", "-R", "-r", ":probe:E::x::/bin/true:")
	testenv.Need(t, r.status == 0 && r.stdout == "register 0 ok\n",
		"binfmt_misc in a user namespace of its own (Linux 6.7 or later): %v", r)
	return p
}

// asNobody is the prefix that runs a command as uid and gid 65534.
func asNobody(t *testing.T) []string {
	return []string{testenv.NeedTool(t, "setpriv"), "--reuid", "65534", "--regid", "65534", "--clear-groups", "--"}
}

// identityNS is a user and mount namespace whose ids map to themselves.
func identityNS() *syscall.SysProcAttr {
	all := []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1<<32 - 1}}
	return &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
		UidMappings: all, GidMappings: all, GidMappingsEnableSetgroups: true,
	}
}

// runLimited runs argv in dir with testEnv and a deadline: past it the
// process group is killed and the test fails, naming what.
func runLimited(t *testing.T, what string, sys *syscall.SysProcAttr, dir string, argv ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), binfmtDeadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = testEnv
	cmd.Dir = dir
	if sys == nil {
		sys = &syscall.SysProcAttr{}
	}
	sys.Setpgid = true
	cmd.SysProcAttr = sys
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s: %v did not end within %v\nstdout:\n%s\nstderr:\n%s", what, argv, binfmtDeadline, o.String(), e.String())
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("%s: %v: %v", what, argv, err)
	}
	return result{o.String(), e.String(), cmd.ProcessState.Sys().(syscall.WaitStatus)}
}

// kernelExec runs launch in a fresh namespace with binfmt_misc and rules.
func kernelExec(t *testing.T, p *bfProgs, dir string, rules, opts, argv []string) result {
	t.Helper()
	args := []string{p.launch, "-b"}
	for _, r := range rules {
		args = append(args, "-r", r)
	}
	args = append(append(append(args, opts...), "--"), argv...)
	return runLimited(t, "kernel", identityNS(), dir, args...)
}

// binfmtFlags are uexec's options for rules, oldest first.
func binfmtFlags(rules []string) []string {
	var f []string
	for _, r := range rules {
		f = append(f, "--binfmt", r)
	}
	return f
}

// uexecTree runs launch under `uexec run --binfmt ...`: its exec is one
// of the tree's.
func uexecTree(t *testing.T, p *bfProgs, dir string, prefix, rules, opts, argv []string) result {
	t.Helper()
	args := append(append([]string{}, prefix...), p.uexec, "run")
	args = append(append(args, binfmtFlags(rules)...), "--", p.launch)
	args = append(append(append(args, opts...), "--"), argv...)
	return runLimited(t, "uexec run", nil, dir, args...)
}

// uexecOnce runs `uexec run --once --binfmt ... -a ARGV0 -- PATH ARGS`.
func uexecOnce(t *testing.T, p *bfProgs, dir string, prefix, rules, argv []string) result {
	t.Helper()
	args := append(append([]string{}, prefix...), p.uexec, "run", "--once")
	args = append(append(args, binfmtFlags(rules)...), "-a", argv[1], "--", argv[0])
	return runLimited(t, "uexec run --once", nil, dir, append(args, argv[2:]...)...)
}

var errnoInMessage = regexp.MustCompile(`\((E[A-Z0-9]+)\)\n?$`)

// onceAsLaunch shows an exec that uexec --once refused as the launcher
// shows a failed exec ("exec ENOENT", status 127), so that the two compare.
func onceAsLaunch(r result) string {
	if st := r.status.ExitStatus(); (st == exitCannot || st == exitNotFound) && r.stdout == "" {
		if m := errnoInMessage.FindStringSubmatch(r.stderr); m != nil {
			return "exec " + m[1] + "\nstatus 127\n"
		}
	}
	return r.stdout + fmt.Sprintf("status %d\n", r.status.ExitStatus())
}

func asLaunch(r result) string { return r.stdout + fmt.Sprintf("status %d\n", r.status.ExitStatus()) }

// stubExe matches the exe line of a program whose /proc/self/exe names
// uexec's stub: the README's documented difference for an exec through a
// rule by a uexec (or a caller) without CAP_SYS_ADMIN or
// CAP_CHECKPOINT_RESTORE, which prctl's exe_fd needs.
// In a tree the stub is an unnamed copy (O_TMPFILE) beside the cached one.
var stubExe = regexp.MustCompile(`(?m)^exe (/memfd:uexec-stub \(deleted\)|\S*/uexec(-\d+)?/((stub|launch)-[0-9a-f]+|#\d+ \(deleted\)))$`)

// documentedExe returns got with an exe line that names the stub replaced
// by the kernel's exe line of want: the difference is documented, and
// everything else must still be the kernel's.
func documentedExe(want, got string) string {
	k := regexp.MustCompile(`(?m)^exe .*$`).FindString(want)
	if k == "" {
		return got
	}
	return stubExe.ReplaceAllLiteralString(got, k)
}

// notRaised is the kernel's output want of a set-id exec as uexec without
// the power to raise ids documents it: the ids stay the caller's, the
// exec is still secure (AT_SECURE 1) and the program dumpable, as the
// kernel leaves an exec whose ids do not change.
func notRaised(want string) string {
	for _, r := range [][2]string{
		{"uid 65534 euid 0 suid 0", "uid 65534 euid 65534 suid 65534"},
		{"AT_EUID 0 ", "AT_EUID 65534 "},
		{"dumpable 0", "dumpable 1"},
	} {
		want = strings.ReplaceAll(want, r[0], r[1])
	}
	return want
}

// bfCase is one exec under rules. In rules, argv, opts and want, DIR is
// the case's directory.
type bfCase struct {
	name  string
	rules []string // oldest first, as given to --binfmt
	files func(t *testing.T, p *bfProgs, dir string)
	opts  []string // launch's options (-m fd, -d, -U)
	argv  []string // PATH ARGV0 [ARG]...
	// want holds lines the kernel's output must contain: the case checks
	// what it claims to check.
	want []string
	// noOnce leaves --once out (the exec is not the first program's, or
	// uexec --once would fall back to /bin/sh on ENOEXEC as execvp does).
	noOnce bool
	// noTree leaves the tree out (a rule would match the launcher itself).
	noTree bool
	// nobody runs the case as uid 65534 too.
	nobody bool
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	os.Remove(path)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dst, string(b), mode)
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	os.Remove(link)
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// text is the content of the targets: neither ELF nor #!, so that a
// target no rule matches fails with ENOEXEC.
const text = "hello, binfmt\n"

// targets writes the files most cases exec.
func targets(t *testing.T, p *bfProgs, dir string) {
	writeFile(t, dir+"/target.rsx", text, 0o755)
	writeFile(t, dir+"/plain", text, 0o755)
	writeFile(t, dir+"/sub/target.rsx", text, 0o755)
	symlink(t, "plain", dir+"/l.rsx")
	writeFile(t, dir+"/dir.rsx/x", text, 0o755)
	writeFile(t, dir+"/.rsx", text, 0o755)
	writeFile(t, dir+"/target.RSX", text, 0o755)
	writeFile(t, dir+"/target.rsx.bak", text, 0o755)
	// M targets: bytes 0xab 0xcd at offset 10 match magic a0cd under mask f0ff; 0xbb does not.
	writeFile(t, dir+"/m-match", "0123456789\xab\xcd"+text, 0o755)
	writeFile(t, dir+"/m-nomatch", "0123456789\xbb\xcd"+text, 0o755)
	copyFile(t, p.probe, dir+"/probe", 0o755)
	copyFile(t, p.probe, dir+"/probe2", 0o755)
	copyFile(t, p.probe, dir+"/probe.rsx", 0o755)
	copyFile(t, p.probe, dir+"/noexec", 0o644)
	writeFile(t, dir+"/script", "#!"+dir+"/target.rsx sarg\n", 0o755)
	writeFile(t, dir+"/shscript", "#!/bin/sh\necho from sh\n", 0o755)
	writeFile(t, dir+"/interp.sh", "#!"+dir+"/probe\n", 0o755)
	copyFile(t, p.static, dir+"/static", 0o755)
}

// depthRules makes n rules that each rewrite to a file the next matches:
// target.e1 -> DIR/i.e2 -> ... -> DIR/i.eN -> DIR/probe.
func depthRules(n int) []string {
	var rules []string
	for i := 1; i <= n; i++ {
		next := fmt.Sprintf("DIR/i.e%d", i+1)
		if i == n {
			next = "DIR/probe"
		}
		rules = append(rules, fmt.Sprintf(":d%d:E::e%d::%s:", i, i, next))
	}
	return rules
}

func depthFiles(n int) func(t *testing.T, p *bfProgs, dir string) {
	return func(t *testing.T, p *bfProgs, dir string) {
		targets(t, p, dir)
		writeFile(t, dir+"/target.e1", text, 0o755)
		for i := 2; i <= n; i++ {
			writeFile(t, fmt.Sprintf("%s/i.e%d", dir, i), text, 0o755)
		}
	}
}

const (
	elfAnyMagic = `\x7fELF\x02\x01\x01`
	// An x86-64 ELF of type ET_EXEC, any OS/ABI: static non-PIE
	// programs, not the PIE probe and launcher.
	elfExecMagic = `\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00`
	elfExecMask  = `\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff`
)

func binfmtCases() []bfCase {
	rsx := func(flags string) string { return ":rsx:E::rsx::DIR/probe:" + flags }
	argv := []string{"./target.rsx", "MYARGV0", "x", "y"}
	var cases []bfCase
	for _, f := range []string{"", "P", "O", "C", "F", "PF", "OC", "POC", "POCF"} {
		name := "flags " + f
		if f == "" {
			name = "flags none"
		}
		want := []string{"argv[1] ./target.rsx", "AT_EXECFN ./target.rsx", "exe DIR/probe", "comm target.rsx"}
		if strings.Contains(f, "P") {
			want = append(want, "argv[2] MYARGV0", "AT_FLAGS 1")
		} else {
			want = append(want, "argv[2] x", "AT_FLAGS 0")
		}
		if strings.ContainsAny(f, "OC") {
			want = append(want, "AT_EXECFD 3", "AT_EXECFD -> DIR/target.rsx", "AT_EXECFD cloexec 0 accmode 0")
		} else {
			want = append(want, "AT_EXECFD absent")
		}
		cases = append(cases, bfCase{name: name, rules: []string{rsx(f)}, argv: argv, want: want, nobody: true})
	}
	mrule := `:m:M:10:\xa0\xcd:\xf0\xff:DIR/probe:`
	cases = append(cases,
		bfCase{name: "M offset and mask", rules: []string{mrule}, argv: []string{"./m-match", "A"}, want: []string{"argv[1] ./m-match", "comm m-match"}, nobody: true},
		bfCase{name: "M masked bits differ", rules: []string{mrule}, argv: []string{"./m-nomatch", "A"}, want: []string{"exec ENOEXEC"}, noOnce: true},
		bfCase{name: "M past end of file reads zeros", rules: []string{`:z:M::hello, binfmt\x0a\x00\x00::DIR/probe:`}, argv: []string{"./plain", "A"}, want: []string{"argv[1] ./plain"}},
		bfCase{name: "M #! magic before scripts", rules: []string{`:hb:M::#!::DIR/probe:`}, argv: []string{"./shscript", "A"}, want: []string{"argv[1] ./shscript"}},
		bfCase{name: "E symlink l.rsx", rules: []string{rsx("")}, argv: []string{"./l.rsx", "A"}, want: []string{"argv[1] ./l.rsx", "comm l.rsx"}},
		bfCase{name: "E dir.rsx/x no match", rules: []string{rsx("")}, argv: []string{"./dir.rsx/x", "A"}, want: []string{"exec ENOEXEC"}, noOnce: true},
		bfCase{name: "E dotfile .rsx", rules: []string{rsx("")}, argv: []string{"./.rsx", "A"}, want: []string{"argv[1] ./.rsx"}},
		bfCase{name: "E case-sensitive", rules: []string{rsx("")}, argv: []string{"./target.RSX", "A"}, want: []string{"exec ENOEXEC"}, noOnce: true},
		bfCase{name: "E last dot", rules: []string{rsx("")}, argv: []string{"./target.rsx.bak", "A"}, want: []string{"exec ENOEXEC"}, noOnce: true},
		bfCase{name: "E absolute path", rules: []string{rsx("")}, argv: []string{"DIR/target.rsx", "A"}, want: []string{"argv[1] DIR/target.rsx", "AT_EXECFN DIR/target.rsx"}},
		bfCase{name: "order newest wins", rules: []string{rsx(""), `:m:M::hello::DIR/probe2:`}, argv: argv, want: []string{"argv[0] DIR/probe2", "exe DIR/probe2"}, nobody: true},
		bfCase{name: "order newest wins reversed", rules: []string{`:m:M::hello::DIR/probe2:`, rsx("")}, argv: argv, want: []string{"argv[0] DIR/probe", "exe DIR/probe"}},
		bfCase{name: "order disabled-by-mismatch falls through", rules: []string{rsx(""), `:m:M::nomatch::DIR/probe2:`}, argv: argv, want: []string{"argv[0] DIR/probe"}},
		bfCase{name: "missing interpreter", rules: []string{":rsx:E::rsx::DIR/nonexistent:"}, argv: argv, want: []string{"exec ENOENT"}, nobody: true},
		bfCase{name: "unexecutable interpreter", rules: []string{":rsx:E::rsx::DIR/noexec:"}, argv: argv, want: []string{"exec EACCES"}, nobody: true},
		bfCase{name: "directory interpreter", rules: []string{":rsx:E::rsx::DIR/sub:"}, argv: argv, want: []string{"exec EACCES"}},
		bfCase{name: "script interpreter matches", rules: []string{rsx("")}, argv: []string{"./script", "S0", "q"},
			want: []string{"argv[0] DIR/probe", "argv[1] DIR/target.rsx", "argv[2] sarg", "argv[3] ./script", "argv[4] q", "AT_EXECFN ./script", "comm script"}, nobody: true},
		bfCase{name: "script interpreter matches P", rules: []string{rsx("P")}, argv: []string{"./script", "S0", "q"}, want: []string{"argv[1] DIR/target.rsx", "argv[2] DIR/target.rsx"}},
		bfCase{name: "script interpreter matches O", rules: []string{rsx("O")}, argv: []string{"./script", "S0", "q"}, want: []string{"AT_EXECFD -> DIR/target.rsx"}},
		bfCase{name: "self-matching interpreter", rules: []string{":rsx:E::rsx::DIR/probe.rsx:"}, argv: argv, want: []string{"exec ELOOP"}},
		bfCase{name: "native ELF ET_EXEC", rules: []string{":elf:M::" + elfExecMagic + ":" + elfExecMask + ":DIR/probe:"}, argv: []string{"./static", "S"},
			want: []string{"argv[0] DIR/probe", "argv[1] ./static", "comm static"}, nobody: true},
		bfCase{name: "native ELF ET_EXEC P O", rules: []string{":elf:M::" + elfExecMagic + ":" + elfExecMask + ":DIR/probe:PO"}, argv: []string{"./static", "S"},
			want: []string{"argv[2] S", "AT_EXECFD -> DIR/static", "AT_EXECFD head 4 7f454c46"}},
		// Any x86-64 ELF: the probe matches its own rule. In a tree the
		// launcher would match too, so only --once is compared.
		bfCase{name: "native ELF self-matching", rules: []string{":elf:M::" + elfAnyMagic + "::DIR/probe:"}, argv: []string{"./static", "S"}, want: []string{"exec ELOOP"}, noTree: true},
		bfCase{name: "relative target", rules: []string{rsx("")}, argv: []string{"sub/target.rsx", "A"}, want: []string{"argv[1] sub/target.rsx", "AT_EXECFN sub/target.rsx", "comm target.rsx"}},
		bfCase{name: "relative interpreter", rules: []string{":rsx:E::rsx::probe:"}, argv: argv, want: []string{"argv[0] probe", "exe DIR/probe"}, nobody: true},
		bfCase{name: "relative interpreter after chdir", rules: []string{":rsx:E::rsx::probe:"}, opts: []string{"-d", "sub"}, argv: []string{"./target.rsx", "A"}, want: []string{"exec ENOENT"}, noOnce: true},
		bfCase{name: "relative interpreter F after chdir", rules: []string{":rsx:E::rsx::probe:F"}, opts: []string{"-d", "sub"}, argv: []string{"./target.rsx", "A"}, want: []string{"argv[0] probe", "exe DIR/probe"}, noOnce: true},
		bfCase{name: "F interpreter unlinked", rules: []string{":rsx:E::rsx::DIR/probe2:F"}, opts: []string{"-U", "DIR/probe2"}, argv: argv, want: []string{"exe DIR/probe2 (deleted)"}, noOnce: true},
		bfCase{name: "interpreter unlinked without F", rules: []string{":rsx:E::rsx::DIR/probe2:"}, opts: []string{"-U", "DIR/probe2"}, argv: argv, want: []string{"exec ENOENT"}, noOnce: true},
		bfCase{name: "execveat fd", rules: []string{`:m:M::hello::DIR/probe:`}, opts: []string{"-m", "fd"}, argv: []string{"DIR/target.rsx", "A", "x"},
			want: []string{"argv[1] /dev/fd/3", "argv[2] x", "AT_EXECFN /dev/fd/3", "comm probe", "fds 0 1 2 3"}, noOnce: true, nobody: true},
		bfCase{name: "execveat fd P", rules: []string{`:m:M::hello::DIR/probe:P`}, opts: []string{"-m", "fd"}, argv: []string{"DIR/target.rsx", "A", "x"},
			want: []string{"argv[1] /dev/fd/3", "argv[2] A"}, noOnce: true},
		bfCase{name: "execveat fd O", rules: []string{`:m:M::hello::DIR/probe:O`}, opts: []string{"-m", "fd"}, argv: []string{"DIR/target.rsx", "A", "x"},
			want: []string{"argv[1] /dev/fd/3", "AT_EXECFD 4", "AT_EXECFD -> DIR/target.rsx", "fds 0 1 2 3 4"}, noOnce: true},
		bfCase{name: "execveat fd E never", rules: []string{rsx("")}, opts: []string{"-m", "fd"}, argv: []string{"DIR/target.rsx", "A"}, want: []string{"exec ENOEXEC"}, noOnce: true},
		bfCase{name: "execveat cloexec fd", rules: []string{`:m:M::hello::DIR/probe:`}, opts: []string{"-m", "cloexec-fd"}, argv: []string{"DIR/target.rsx", "A"}, want: []string{"exec ENOENT"}, noOnce: true, nobody: true},
		bfCase{name: "execveat cloexec fd O", rules: []string{`:m:M::hello::DIR/probe:O`}, opts: []string{"-m", "cloexec-fd"}, argv: []string{"DIR/target.rsx", "A"}, want: []string{"exec ENOENT"}, noOnce: true},
		bfCase{name: "depth 5 rewrites", rules: depthRules(5), files: depthFiles(5), argv: []string{"./target.e1", "A"},
			want: []string{"argv[0] DIR/probe", "argv[1] DIR/i.e5", "argv[5] ./target.e1", "comm target.e1"}, nobody: true},
		bfCase{name: "depth 6 rewrites", rules: depthRules(6), files: depthFiles(6), argv: []string{"./target.e1", "A"}, want: []string{"exec ELOOP"}, nobody: true},
		bfCase{name: "script after plain hop", rules: []string{":rsx:E::rsx::DIR/interp.sh:"}, argv: argv, want: []string{"argv[0] DIR/probe", "argv[1] DIR/interp.sh", "argv[2] ./target.rsx"}},
		bfCase{name: "script after O hop", rules: []string{":rsx:E::rsx::DIR/interp.sh:O"}, argv: argv, want: []string{"exec ENOEXEC"}, noOnce: true},
		bfCase{name: "script after C hop", rules: []string{":rsx:E::rsx::DIR/interp.sh:C"}, argv: argv, want: []string{"exec ENOEXEC"}, noOnce: true},
		bfCase{name: "rule after O hop", rules: []string{":b:E::e2::DIR/probe:", ":rsx:E::rsx::DIR/i.e2:O"}, files: depthFiles(2), argv: argv, want: []string{"exec ENOEXEC"}, noOnce: true},
		// A second rule that passes the file: the first one's AT_EXECFD
		// still forbids the rewrite (have_execfd stays set).
		bfCase{name: "O rule after O hop", rules: []string{":b:E::e2::DIR/probe:O", ":rsx:E::rsx::DIR/i.e2:O"}, files: depthFiles(2), argv: argv, want: []string{"exec ENOEXEC"}, noOnce: true},
		bfCase{name: "C rule after C hop", rules: []string{":b:E::e2::DIR/probe:C", ":rsx:E::rsx::DIR/i.e2:C"}, files: depthFiles(2), argv: argv, want: []string{"exec ENOEXEC"}, noOnce: true},
		bfCase{name: "self-matching interpreter O", rules: []string{":rsx:E::rsx::DIR/probe.rsx:O"}, argv: argv, want: []string{"exec ENOEXEC"}, noOnce: true},
	)
	return cases
}

func expand(dir string, ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ReplaceAll(s, "DIR", dir)
	}
	return out
}

// binfmtUser is who runs a case: root, or uid 65534 on both sides.
type binfmtUser struct {
	who    string
	prefix []string // uexec as 65534
	ids    []string // the kernel's launcher drops to 65534
}

// binfmtUsers: root first, then uid 65534.
func binfmtUsers(t *testing.T) []binfmtUser {
	return []binfmtUser{{who: "root"}, {"uid 65534", asNobody(t), []string{"-u", "65534:65534"}}}
}

// TestBinfmtAgainstKernel runs every case by the kernel and by uexec.
func TestBinfmtAgainstKernel(t *testing.T) {
	p := binfmtProgs(t)
	for _, tc := range binfmtCases() {
		t.Run(tc.name, func(t *testing.T) {
			dir := testenv.SharedTempDir(t)
			files := tc.files
			if files == nil {
				files = targets
			}
			rules, opts, argv := expand(dir, tc.rules), expand(dir, tc.opts), expand(dir, tc.argv)
			variants := binfmtUsers(t)
			if !tc.nobody {
				variants = variants[:1]
			}
			for _, v := range variants {
				files(t, p, dir)
				kernel := kernelExec(t, p, dir, rules, append(append([]string{}, v.ids...), opts...), argv)
				k := asLaunch(kernel)
				if strings.HasPrefix(kernel.stdout, "launch:") {
					t.Fatalf("%s: the kernel's side did not get to the exec:\n%v", v.who, kernel)
				}
				for _, w := range expand(dir, tc.want) {
					if !strings.Contains("\n"+k, "\n"+w+"\n") {
						t.Errorf("%s: the kernel's output lacks %q (the case is wrong):\n%s", v.who, w, k)
					}
				}
				if !tc.noTree {
					files(t, p, dir)
					u := uexecTree(t, p, dir, v.prefix, rules, opts, argv)
					got := asLaunch(u)
					if v.prefix != nil {
						got = documentedExe(k, got)
					}
					if got != k {
						t.Errorf("%s: uexec run differs from the kernel:\n%s\nkernel:\n%s\nuexec run:\n%s\nuexec stderr:\n%s",
							v.who, testenv.LineDiff(k, got), k, got, u.stderr)
					}
				}
				if !tc.noOnce && len(opts) == 0 {
					files(t, p, dir)
					u := uexecOnce(t, p, dir, v.prefix, rules, argv)
					got := onceAsLaunch(u)
					if v.prefix != nil {
						got = documentedExe(k, got)
					}
					if got != k {
						t.Errorf("%s: uexec run --once differs from the kernel:\n%s\nkernel:\n%s\nuexec run --once:\n%s\nuexec stderr:\n%s",
							v.who, testenv.LineDiff(k, got), k, got, u.stderr)
					}
				}
			}
		})
	}
}

// TestBinfmtSetuidTarget: a set-uid-root target run by uid 65534 gets
// euid 0 and AT_SECURE 1 only with C, by the kernel and by root's uexec
// (the tree drops to 65534 before the exec). An ordinary user's uexec
// cannot raise ids; as documented for set-id programs (TestRunUnprivileged,
// TestOnceSetuidAsUser), its tree runs under no_new_privs, so it must
// equal the kernel's exec under no_new_privs, and --once must equal the
// kernel's exec.
func TestBinfmtSetuidTarget(t *testing.T) {
	p := binfmtProgs(t)
	for _, flags := range []string{"", "O", "C", "POC"} {
		t.Run("flags "+flags, func(t *testing.T) {
			dir := testenv.SharedTempDir(t)
			files := func() {
				targets(t, p, dir)
				writeFile(t, dir+"/su.rsx", text, 0o755)
				if err := os.Chown(dir+"/su.rsx", 0, 0); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(dir+"/su.rsx", 0o755|os.ModeSetuid); err != nil {
					t.Fatal(err)
				}
			}
			rules := []string{":rsx:E::rsx::" + dir + "/probe:" + flags}
			argv := []string{"./su.rsx", "A"}
			drop := []string{"-u", "65534:65534"}
			files()
			k := asLaunch(kernelExec(t, p, dir, rules, drop, argv))
			want := []string{"uid 65534 euid 65534 suid 65534", "AT_SECURE 0"}
			if strings.Contains(flags, "C") {
				want = []string{"uid 65534 euid 0 suid 0", "AT_SECURE 1"}
				testenv.Need(t, strings.Contains(k, "euid 0"), "set-uid files do not work in %s:\n%s", dir, k)
			}
			for _, w := range want {
				if !strings.Contains(k, w+"\n") {
					t.Errorf("the kernel's output lacks %q:\n%s", w, k)
				}
			}
			compare := func(what, want, got, stderr string) {
				t.Helper()
				if got != want {
					t.Errorf("%s differs from the kernel:\n%s\nkernel:\n%s\n%s:\n%s\nuexec stderr:\n%s", what, testenv.LineDiff(want, got), want, what, got, stderr)
				}
			}
			// The caller dropped to 65534 and lost its capabilities: the
			// stub in its place can neither raise ids nor set exe_fd.
			files()
			u := uexecTree(t, p, dir, nil, rules, drop, argv)
			compare("root's uexec run, exec as 65534", notRaised(k), documentedExe(k, asLaunch(u)), u.stderr)

			files()
			kn := asLaunch(kernelExec(t, p, dir, rules, append(drop, "-N"), argv))
			if !strings.Contains(kn, "uid 65534 euid 65534 suid 65534\n") {
				t.Errorf("the kernel under no_new_privs raised ids:\n%s", kn)
			}
			files()
			u = uexecTree(t, p, dir, asNobody(t), rules, nil, argv)
			compare("uexec run as 65534 (vs the kernel under no_new_privs)", kn, documentedExe(kn, asLaunch(u)), u.stderr)
			files()
			u = uexecOnce(t, p, dir, asNobody(t), rules, argv)
			compare("uexec run --once as 65534", notRaised(k), documentedExe(k, onceAsLaunch(u)), u.stderr)
		})
	}
}

// TestBinfmtRegisterStrings: a rule the kernel refuses to register is a
// usage error of uexec (exit 125, the kernel's errno named); a rule it
// registers is accepted.
func TestBinfmtRegisterStrings(t *testing.T) {
	p := binfmtProgs(t)
	dir := testenv.SharedTempDir(t)
	copyFile(t, p.probe, dir+"/noexec", 0o644)
	// busy is open for writing while the rules are registered.
	copyFile(t, p.probe, dir+"/busy", 0o755)
	busy, err := os.OpenFile(dir+"/busy", os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	long := func(n int) string { return strings.Repeat("x", n) }
	hex := func(n int) string { return strings.Repeat(`\x41`, n) }
	ok := ":a:E::rsx::/bin/true:"
	var unnamed []string
	for _, tc := range []struct {
		name  string
		rules []string
	}{
		{"E", []string{ok}},
		{"M", []string{`:a:M::\x7fELF::/bin/true:`}},
		{"trailing newline", []string{ok + "\n"}},
		{"two newlines", []string{ok + "\n\n"}},
		{"other delimiter", []string{",a,E,,rsx,,/bin/true,"}},
		{"all flags", []string{ok + "POCF"}},
		{"repeated flags", []string{ok + "PPOO"}},
		{"flags in any order", []string{ok + "FCOP"}},
		{"lowercase flag", []string{ok + "p"}},
		{"flag T", []string{ok + "T"}},
		{"flag L", []string{ok + "L"}},
		{"flag D", []string{ok + "D"}},
		{"flag X", []string{ok + "X"}},
		{"junk after flags", []string{ok + "P:x"}},
		{"delimiter after flags", []string{ok + "P:"}},
		{"missing flags field", []string{":a:E::rsx::/bin/true"}},
		{"missing fields", []string{":a:E::rsx:"}},
		{"empty name", []string{"::E::rsx::/bin/true:"}},
		{"name .", []string{":.:E::rsx::/bin/true:"}},
		{"name ..", []string{":..:E::rsx::/bin/true:"}},
		{"name with slash", []string{":a/b:E::rsx::/bin/true:"}},
		{"name 255", []string{":" + long(255) + ":E::rsx::/bin/true:"}},
		{"name 256", []string{":" + long(256) + ":E::rsx::/bin/true:"}},
		{"duplicate name", []string{ok, ":a:M::ab::/bin/true:"}},
		{"two rules", []string{ok, ":b:M::ab::/bin/true:"}},
		{"type X", []string{":a:X::rsx::/bin/true:"}},
		{"type m", []string{":a:m::ab::/bin/true:"}},
		{"type empty", []string{":a:::rsx::/bin/true:"}},
		{"type ME", []string{":a:ME::rsx::/bin/true:"}},
		{"offset 5", []string{":a:M:5:ab::/bin/true:"}},
		{"offset -1", []string{":a:M:-1:ab::/bin/true:"}},
		{"offset 0x10", []string{":a:M:0x10:ab::/bin/true:"}},
		{"offset space 5", []string{":a:M: 5:ab::/bin/true:"}},
		{"offset 5 space", []string{":a:M:5 :ab::/bin/true:"}},
		{"offset +5", []string{":a:M:+5:ab::/bin/true:"}},
		{"offset 255 size 1", []string{":a:M:255:a::/bin/true:"}},
		{"offset 256 size 1", []string{":a:M:256:a::/bin/true:"}},
		{"offset 254 size 2", []string{":a:M:254:ab::/bin/true:"}},
		{"offset huge", []string{":a:M:99999999999999999999:ab::/bin/true:"}},
		{"offset on E", []string{":a:E:junk:rsx::/bin/true:"}},
		{"mask on E", []string{":a:E::rsx:\xff:/bin/true:"}},
		{"magic 256", []string{":a:M::" + hex(256) + "::/bin/true:"}},
		{"magic 257", []string{":a:M::" + hex(257) + "::/bin/true:"}},
		{"magic empty", []string{":a:M:::::/bin/true:"}},
		{"magic bad hex", []string{`:a:M::\xZZ::/bin/true:`}},
		{"magic short hex", []string{`:a:M::a\x4::/bin/true:`}},
		{"magic other escape", []string{`:a:M::\n\\::/bin/true:`}},
		{"magic \\x00", []string{`:a:M::\x00\x01::/bin/true:`}},
		{"magic uppercase hex", []string{`:a:M::\xAB::/bin/true:`}},
		{"mask same length", []string{`:a:M::ab:\xff\x0f:/bin/true:`}},
		{"mask shorter", []string{`:a:M::ab:\xff:/bin/true:`}},
		{"mask longer", []string{`:a:M::ab:\xff\xff\xff:/bin/true:`}},
		{"mask bad hex", []string{`:a:M::ab:\xfg\xff:/bin/true:`}},
		{"E with dot", []string{":a:E::.rsx::/bin/true:"}},
		{"E with slash", []string{":a:E::a/b::/bin/true:"}},
		{"E empty", []string{":a:E::::/bin/true:"}},
		{"E with escape", []string{`:a:E::\x41::/bin/true:`}},
		{"empty interpreter", []string{":a:E::rsx:::"}},
		{"interpreter 1910", []string{":a:E::x::/" + long(1909) + ":"}},
		{"interpreter 1911", []string{":a:E::x::/" + long(1910) + ":"}},
		{"length 1920 with newline", []string{":a:E::x::/" + long(1908) + ":\n"}},
		{"too short", []string{":a:E::x:/:"}},
		{"shortest", []string{":a:E::x::/:"}},
		{"empty", []string{""}},
		{"F missing interpreter", []string{":a:E::rsx::" + dir + "/missing:F"}},
		{"F unexecutable interpreter", []string{":a:E::rsx::" + dir + "/noexec:F"}},
		{"F directory interpreter", []string{":a:E::rsx::" + dir + ":F"}},
		{"missing interpreter without F", []string{":a:E::rsx::" + dir + "/missing:"}},
		// The kernel opens an F interpreter before it looks the name up.
		{"name 256 F missing interpreter", []string{":" + long(256) + ":E::rsx::" + dir + "/missing:F"}},
		{"duplicate name F missing interpreter", []string{ok, ":a:E::rsx::" + dir + "/missing:F"}},
		{"duplicate name F unexecutable interpreter", []string{ok, ":a:E::rsx::" + dir + "/noexec:F"}},
		{"name status F missing interpreter", []string{":status:E::rsx::" + dir + "/missing:F"}},
		{"F interpreter open for writing", []string{":a:E::rsx::" + dir + "/busy:F"}},
		{"open for writing without F", []string{":a:E::rsx::" + dir + "/busy:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{p.launch, "-b", "-R"}
			for _, r := range tc.rules {
				args = append(args, "-r", r)
			}
			kr := runLimited(t, "kernel", identityNS(), dir, args...)
			if kr.status != 0 || strings.HasPrefix(kr.stdout, "launch:") {
				t.Fatalf("kernel's side: %v", kr)
			}
			kernel := "ok"
			for _, l := range strings.Split(strings.TrimSpace(kr.stdout), "\n") {
				if f := strings.Fields(l); len(f) == 3 && f[2] != "ok" {
					kernel = f[2]
					break
				}
			}
			u := runLimited(t, "uexec plan", nil, dir, append(append([]string{p.uexec, "plan"}, binfmtFlags(tc.rules)...), "/bin/true")...)
			// A rule the kernel registers is not a usage error (the plan
			// of /bin/true may still fail: a rule may match it).
			switch {
			case kernel == "ok" && u.status.ExitStatus() == exitUsage:
				t.Errorf("the kernel registers %s; uexec plan refuses it: exit %d, stderr %q", shortRules(tc.rules), u.status.ExitStatus(), u.stderr)
			case kernel != "ok" && (u.status.ExitStatus() != exitUsage || !mentionsErrno(u.stderr, kernel)):
				t.Errorf("the kernel refuses %s with %s; uexec plan: want exit %d and %s in the message, got exit %d, stderr %q", shortRules(tc.rules), kernel, exitUsage, kernel, u.status.ExitStatus(), u.stderr)
			case kernel != "ok" && !regexp.MustCompile(`\b`+kernel+`\b`).MatchString(u.stderr):
				unnamed = append(unnamed, fmt.Sprintf("%s: %s: %q", tc.name, kernel, u.stderr))
			}
		})
	}
	// The errno's name, as uexec's other messages give it ("(ENOENT)").
	if len(unnamed) > 0 {
		t.Errorf("%d messages of refused rules give the errno's text but not its name, for example\n%s", len(unnamed), strings.Join(unnamed[:min(3, len(unnamed))], "\n"))
	}
}

// mentionsErrno reports whether msg names errno or gives its text.
func mentionsErrno(msg, name string) bool {
	if regexp.MustCompile(`\b` + name + `\b`).MatchString(msg) {
		return true
	}
	for e := unix.Errno(1); e < 200; e++ {
		if unix.ErrnoName(e) == name {
			return strings.Contains(msg, e.Error())
		}
	}
	return false
}

// shortRules quotes rules for a message, the long ones cut.
func shortRules(rules []string) string {
	var q []string
	for _, r := range rules {
		if len(r) > 80 {
			r = fmt.Sprintf("%s...(%d bytes)...%s", r[:40], len(r), r[len(r)-20:])
		}
		q = append(q, fmt.Sprintf("%q", r))
	}
	return strings.Join(q, " ")
}

// copyExec copies the program src to dir/name, mode 0755, for tests that
// need their programs where every user may run them.
func copyExec(t *testing.T, dir, src, name string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBinfmtFixedInterpreterChmod: an F interpreter made unexecutable
// after its rule was registered still runs, as the kernel runs it
// (file_clone_open checks nothing again), but prctl(PR_SET_MM_MAP) refuses
// it as exe_fd (MAY_EXEC), so /proc/PID/exe names the stub, and --verbose
// says why (a documented difference).
func TestBinfmtFixedInterpreterChmod(t *testing.T) {
	p := binfmtProgs(t)
	testenv.NeedRoot(t)
	dir := testenv.SharedTempDir(t)
	targets(t, p, dir)
	rule := ":rsx:E::rsx::" + dir + "/probe2:F"
	r := runLimited(t, "uexec run", nil, dir, p.uexec, "run", "--verbose", "--binfmt", rule, "--",
		"/bin/sh", "-c", "chmod 644 "+dir+"/probe2 && exec ./target.rsx A")
	if r.status.ExitStatus() != 0 || !strings.Contains(r.stdout, "argv[1] ./target.rsx\n") {
		t.Fatalf("the interpreter did not run: %v", r)
	}
	if !stubExe.MatchString(r.stdout) {
		t.Errorf("exe does not name the stub:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "refuses an exe_fd this process may not execute") {
		t.Errorf("--verbose does not say why exe names the stub:\n%s", r.stderr)
	}
}
