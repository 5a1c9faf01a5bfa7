package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uexec/uexec/internal/testenv"
)

// TestTreeKernelExecs: in an ordinary user's tree with no binfmt rule,
// emulation root, policy or stop at exec, the kernel does every exec (only
// its exec makes /proc/PID/exe the program's), so the execs of the tree are
// the kernel's in everything, even where uexec could not plan them: an
// execute-only program (mode 0711, root's), static and dynamic, runs as
// natively, with and without --log-execs, where uexec refused it with
// EACCES; a missing file fails with the kernel's errno, and the log says
// what each exec was (by the kernel, the plan's error or why uexec could
// not plan it). The log on stderr precedes each exec (its lines whole
// between the shell's messages); a log file's lines may follow them.
func TestTreeKernelExecs(t *testing.T) {
	needRun(t)
	testenv.NeedRoot(t) // root's execute-only files, a user to drop to
	dir, bin := sharedUexec(t)
	static, dynamic := executeOnly(t, dir, "/bin/true")
	missing := filepath.Join(dir, "missing")
	sh := filepath.Join(dir, "s.sh")
	if err := os.WriteFile(sh, []byte("#!/bin/sh\necho fd-script\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Through the caller's descriptors (/dev/fd/N: its /proc/PID/fd),
	// which are gone or others once its exec is done.
	script := static + " a b; echo $?; " + dynamic + "; echo $?; " + missing + "; echo $?; " +
		"exec 4<" + sh + "; /dev/fd/4; echo $?; exec 5<" + dir + "; /dev/fd/5; echo $?"
	native := runCmd(t, "", "/", append(asNobody(t), "/bin/sh", "-c", script)...)
	if !strings.Contains(native.stdout, "hello tls=42 argc=3") || !strings.HasSuffix(native.stdout, "\n0\n0\n127\nfd-script\n0\n126\n") {
		t.Fatalf("natively, as 65534: %v", native)
	}
	want := strings.ReplaceAll(native.String(), "/bin/sh:", "sh:")
	logFile := userLog(t, dir)
	for _, log := range []string{"", "-", logFile} {
		argv := append(asNobody(t), bin, "run")
		if log != "" {
			argv = append(argv, "--log-execs", log)
		}
		under := runCmd(t, "", "/", append(argv, "/bin/sh", "-c", script)...)
		// On stderr each line precedes the exec it reports, so no
		// line cuts into the shell's message; a file's may come late.
		lines, rest := splitLog(under.stderr)
		under.stderr = rest
		if got := strings.ReplaceAll(under.String(), "/bin/sh:", "sh:"); got != want {
			t.Errorf("log %q: as 65534 under uexec run:\n%s\nnatively:\n%s", log, got, want)
		}
		if log == "" {
			continue
		}
		if log == logFile {
			b, err := os.ReadFile(logFile)
			if err != nil {
				t.Fatal(err)
			}
			lines, _ = splitLog(string(b))
		}
		seen := map[string]bool{}
		for _, l := range lines {
			var ev struct {
				Event, Path, By, Note, Result string
			}
			if err := json.Unmarshal([]byte(l), &ev); err != nil || ev.Event != "exec" {
				continue
			}
			switch ev.Path {
			case static, dynamic:
				if ev.By != "kernel" || ev.Result != "kernel" || !strings.Contains(ev.Note, "uexec could not plan the exec") {
					t.Errorf("log line of an execute-only program: %s", l)
				}
			case missing, "/dev/fd/5":
				if ev.By != "kernel" || ev.Result != map[string]string{missing: "ENOENT", "/dev/fd/5": "EACCES"}[ev.Path] {
					t.Errorf("log line of a failed exec: %s", l)
				}
			case "/dev/fd/4":
				if ev.By != "kernel" || ev.Result != "kernel" {
					t.Errorf("log line of a script run through its descriptor: %s", l)
				}
			}
			seen[ev.Path] = true
		}
		if !seen[static] || !seen[dynamic] || !seen[missing] || !seen["/dev/fd/4"] || !seen["/dev/fd/5"] {
			t.Errorf("the log misses execs:\n%s", strings.Join(lines, "\n"))
		}
	}
	// The shell's last command, whose failure ends it at once: a plan of
	// it made after the answer found no /proc/PID/fd/5 (ENOENT), most
	// times.
	for i := range 10 {
		r := runCmd(t, "", "/", append(asNobody(t), bin, "run", "--log-execs", logFile, "/bin/sh", "-c", "exec 5<"+dir+"; /dev/fd/5")...)
		b, err := os.ReadFile(logFile)
		if err != nil {
			t.Fatal(err)
		}
		if r.status.ExitStatus() != 126 || !strings.Contains(string(b), `"path":"/dev/fd/5","argv":["/dev/fd/5"],"chain":[],"result":"EACCES"`) {
			t.Fatalf("run %d: %v\nlog:\n%s", i, r, b)
		}
	}
}

// userLog is a log file's name in a directory of dir that any user may
// write.
func userLog(t *testing.T, dir string) string {
	logDir := filepath.Join(dir, "logs")
	if err := os.Mkdir(logDir, 0o777); err != nil || os.Chmod(logDir, 0o777) != nil {
		t.Fatal(err)
	}
	return filepath.Join(logDir, "log")
}

// executeOnly makes, in dir, execute-only (0711) copies of a static C
// program (hello.c) and of the dynamic program dyn, root's.
func executeOnly(t *testing.T, dir, dyn string) (static, dynamic string) {
	static = filepath.Join(dir, "xo-static")
	copyFile(t, testenv.BuildC(t, "testdata/progs/hello.c", "-static"), static, 0o711)
	dynamic = filepath.Join(dir, "xo-"+filepath.Base(dyn))
	copyFile(t, dyn, dynamic, 0o711)
	return static, dynamic
}

// splitLog parts stderr into the JSON lines of --log-execs - and the rest.
func splitLog(stderr string) (lines []string, rest string) {
	var other []string
	for _, l := range strings.SplitAfter(stderr, "\n") {
		if strings.HasPrefix(l, "{") {
			lines = append(lines, strings.TrimSpace(l))
		} else if l != "" {
			other = append(other, l)
		}
	}
	return lines, strings.Join(other, "")
}

// TestFirstExecuteOnly: an ordinary user's first program that uexec may
// not read but the user may execute (mode 0711, root's: a static and a
// dynamic program, and a script, whose interpreter then cannot read it) is
// the kernel's exec, in the tree and with --once, and runs as natively
// (uexec refused it with EACCES); the log says it was the kernel's and why.
// A file the user may not execute at all (0700) still fails with EACCES,
// as natively, for want of execute permission.
func TestFirstExecuteOnly(t *testing.T) {
	needRun(t)
	testenv.NeedRoot(t) // root's execute-only files, a user to drop to
	dir, bin := sharedUexec(t)
	static, dynamic := executeOnly(t, dir, "/bin/echo")
	script := filepath.Join(dir, "xo.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho script\n"), 0o711); err != nil || os.Chmod(script, 0o711) != nil {
		t.Fatal(err)
	}
	closed := filepath.Join(dir, "closed")
	copyFile(t, "/bin/true", closed, 0o700)
	logFile := userLog(t, dir)
	for _, argv := range [][]string{{static, "a", "b"}, {dynamic, "hi"}, {script}} {
		native := runCmd(t, "", "/", append(asNobody(t), argv...)...)
		if argv[0] != script && native.status != 0 || argv[0] == script && native.status.ExitStatus() != 2 {
			t.Fatalf("%s natively, as 65534: %v", argv[0], native)
		}
		for _, mode := range [][]string{{}, {"--once"}} {
			os.Remove(logFile)
			under := runCmd(t, "", "/", append(append(append(asNobody(t), bin, "run", "--log-execs", logFile), mode...), argv...)...)
			if under.String() != native.String() {
				t.Errorf("%s: as 65534 under uexec run %v:\n%s\nnatively:\n%s", argv[0], mode, under, native)
			}
			b, _ := os.ReadFile(logFile)
			lines, _ := splitLog(string(b))
			var ev struct{ Event, Path, By, Note, Result string }
			if len(lines) == 0 || json.Unmarshal([]byte(lines[0]), &ev) != nil || ev.Path != argv[0] || ev.By != "kernel" ||
				ev.Result != "kernel" || !strings.Contains(ev.Note, "uexec may not read "+argv[0]) {
				t.Errorf("%s, uexec run %v: the log's first line: %s", argv[0], mode, b)
			}
		}
	}
	for _, mode := range [][]string{{}, {"--once"}} {
		under := runCmd(t, "", "/", append(append(append(asNobody(t), bin, "run"), mode...), closed)...)
		if under.status.ExitStatus() != 126 || !strings.Contains(under.stderr, "permission denied (EACCES)") {
			t.Errorf("a file of mode 0700, uexec run %v, as 65534: %v", mode, under)
		}
	}
	// Execute-only files whose exec the kernel refuses: execvp goes on as
	// with the kernel's errno (ENOEXEC: /bin/sh, which cannot read it;
	// ENOENT: the next PATH entry, or 127), where the stub's exec of them
	// killed the tree's first program past the point of no return.
	mk := func(sub, name, body string, mode os.FileMode) {
		d := filepath.Join(dir, sub)
		os.Mkdir(d, 0o755)
		p := filepath.Join(d, name)
		if err := os.WriteFile(p, []byte(body), mode); err != nil || os.Chmod(d, 0o755) != nil || os.Chmod(p, mode) != nil {
			t.Fatal(err)
		}
	}
	mk("x", "noshebang", "echo never\n", 0o711)
	mk("x", "missing", "#!/nonexistent/sh\n", 0o711)
	mk("x", "badelf", "\x7fELF\x02\x01\x01", 0o711)
	mk("ok", "missing", "#!/bin/sh\necho the next one\nexit 3\n", 0o755)
	path := "PATH=" + filepath.Join(dir, "x") + ":" + filepath.Join(dir, "ok")
	for _, argv := range [][]string{{"./noshebang"}, {"./missing"}, {"./badelf"}, {"env", path, "missing"}, {"env", path, "noshebang"},
		{"/proc/self/cwd/noshebang"}, {"/proc/self/cwd/missing"}} {
		wd := filepath.Join(dir, "x")
		native := runCmd(t, "", wd, append(append(asNobody(t), "env"), argv...)...)
		for _, mode := range [][]string{{}, {"--once"}} {
			var under result
			if argv[0] == "env" {
				under = runCmd(t, "", wd, append(append(append(asNobody(t), "env", argv[1], bin, "run"), mode...), argv[2:]...)...)
			} else {
				under = runCmd(t, "", wd, append(append(append(asNobody(t), bin, "run"), mode...), argv...)...)
			}
			if under.status != native.status || under.stdout != native.stdout ||
				strings.Contains(native.stderr, "cannot open") != strings.Contains(under.stderr, "cannot open") {
				t.Errorf("%v, uexec run %v, as 65534:\n%v\nnatively (env):\n%v", argv, mode, under, native)
			}
		}
	}
}

// TestTreeUnreadableCaller: in an ordinary user's tree with a log, the exec
// of a caller whose memory uexec may not read (not dumpable) is the
// kernel's, logged as such, and runs as natively.
func TestTreeUnreadableCaller(t *testing.T) {
	needRun(t)
	testenv.NeedRoot(t) // a user to drop to
	dir, bin := sharedUexec(t)
	nodump := filepath.Join(dir, "nodump")
	copyFile(t, testenv.BuildC(t, "testdata/progs/nodump.c"), nodump, 0o755)
	logFile := userLog(t, dir)
	r := runCmd(t, "", "/", append(asNobody(t), bin, "run", "--log-execs", logFile, nodump, "/bin/echo", "hi")...)
	b, _ := os.ReadFile(logFile)
	if r.status != 0 || r.stdout != "hi\n" || !strings.Contains(string(b), `"by":"kernel","note":"this process may not read the caller's memory"}`) {
		t.Errorf("%v\nlog:\n%s", r, b)
	}
}

// TestOnceExecuteOnlyUnderStrace: under strace -f the kernel cannot be
// asked about an execute-only file first (its probe is not traced by
// uexec), so --once hands the exec to the kernel in place and its failure
// comes at the exec: a missing interpreter is still 127, as with env.
func TestOnceExecuteOnlyUnderStrace(t *testing.T) {
	needRun(t)
	testenv.NeedRoot(t) // a root file for a user to drop to
	strace := testenv.NeedTool(t, "strace")
	dir, bin := sharedUexec(t)
	bad := filepath.Join(dir, "badinterp")
	if err := os.WriteFile(bad, []byte("#!/nonexistent/interp\n"), 0o711); err != nil || os.Chmod(bad, 0o711) != nil {
		t.Fatal(err)
	}
	native := runCmd(t, "", "/", append(asNobody(t), "env", bad)...)
	under := runCmd(t, "", "/", append([]string{strace, "-f", "-o", "/dev/null"}, append(asNobody(t), bin, "run", "--once", bad)...)...)
	if native.status.ExitStatus() != 127 || under.status.ExitStatus() != 127 {
		t.Errorf("natively %v\nunder strace, uexec run --once: %v", native, under)
	}
}
