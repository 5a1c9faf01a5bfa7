package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/uexec/uexec/internal/testenv"
)

// TestExecLogEnds: the exec log of a tree, for root and an ordinary user,
// gives one exit line to every process it has an exec line of, and names
// each the way `uexec log tree` follows it: an orphan whose parent ended
// first (reaped by init, late or never on this kind of machine: reported
// as procfs shows the zombie) had no exit line; a thread's exec has the
// process's id as "tgid" (its exec line was a process of its own that never
// ended); an execveat by descriptor has the path /dev/fd/N (it was "").
func TestExecLogEnds(t *testing.T) {
	needRun(t)
	testenv.NeedRoot(t) // a user to drop to
	dir, bin := sharedUexec(t)
	prog := filepath.Join(dir, "threadexec")
	copyFile(t, testenv.BuildC(t, "testdata/progs/threadexec.c", "-pthread"), prog, 0o755)
	logs := filepath.Join(dir, "logs")
	if err := os.Mkdir(logs, 0o777); err != nil || os.Chmod(logs, 0o777) != nil {
		t.Fatal(err)
	}
	script := `(sh -c "sleep 0.2; exit 3" & exec /bin/true); ` + prog + ` thread /bin/echo from-thread; ` + prog + ` fd /bin/echo by-fd; sleep 0.4`
	for _, user := range [][]string{nil, asNobody(t)} {
		for _, dest := range []string{"file", "stderr"} {
			logFile := filepath.Join(logs, "log-"+dest+strconv.Itoa(len(user)))
			arg := logFile
			if dest == "stderr" {
				arg = "-"
			}
			r := runCmd(t, "", "/", append(append([]string{}, user...), bin, "run", "--log-execs", arg, "/bin/sh", "-c", script)...)
			if r.status != 0 || r.stdout != "from-thread\nby-fd\n" {
				t.Fatalf("%v %s: %v", user, dest, r)
			}
			text := r.stderr
			if dest == "file" {
				b, err := os.ReadFile(logFile)
				if err != nil {
					t.Fatal(err)
				}
				text = string(b)
			}
			lines, _ := splitLog(text)
			path := filepath.Join(logs, "read-"+dest+strconv.Itoa(len(user)))
			if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			log := readRawLog(t, path)
			execs, exits := map[int]bool{}, map[int][]logRaw{}
			var thread, byFD, orphan bool
			for _, l := range log {
				switch l.Event {
				case "exec":
					id := l.Pid
					if l.Tgid != 0 {
						id = l.Tgid
					}
					execs[id] = true
					thread = thread || l.Path == "/bin/echo" && l.Tgid != 0 && l.Tgid != l.Pid
					byFD = byFD || strings.HasPrefix(l.Path, "/dev/fd/") && len(l.Argv) == 2 && l.Argv[1] == "by-fd"
				case "exit":
					exits[l.Pid] = append(exits[l.Pid], l)
				}
			}
			for id := range execs {
				if len(exits[id]) != 1 {
					t.Errorf("%v %s: pid %d has %d exit lines:\n%s", user, dest, id, len(exits[id]), text)
				}
			}
			for _, l := range log {
				if l.Event == "exec" && len(l.Argv) == 3 && l.Argv[2] == "sleep 0.2; exit 3" {
					e := exits[l.Pid]
					orphan = len(e) == 1 && e[0].Status != nil && *e[0].Status == 3
				}
			}
			if !thread || !byFD || !orphan {
				t.Errorf("%v %s: thread's exec with its tgid %v, /dev/fd path %v, the orphan's exit 3 %v:\n%s",
					user, dest, thread, byFD, orphan, text)
			}
			tree := runCmd(t, "", "/", uexecBin, "log", "tree", path)
			if strings.Contains(tree.stdout, "no exit seen") || strings.Contains(tree.stdout, "\necho from-thread") {
				t.Errorf("%v %s: uexec log tree:\n%v", user, dest, tree)
			}
		}
	}
}

// TestExecLogBeforeOutput: on stderr, an exec's log line comes before
// anything its program writes there, for root's tree (whose line was
// written once the caller had gone on: after the program's output about 1
// time in 10) and an ordinary user's.
func TestExecLogBeforeOutput(t *testing.T) {
	needRun(t)
	testenv.NeedRoot(t) // a user to drop to
	_, bin := sharedUexec(t)
	for _, user := range [][]string{nil, asNobody(t)} {
		for i := range 150 {
			r := runCmd(t, "", "/", append(append([]string{}, user...), bin, "run", "--log-execs", "-", "/bin/sh", "-c", "/bin/echo a; /bin/echo b >&2")...)
			line := strings.Index(r.stderr, `"argv":["/bin/echo","b"]`)
			out := strings.Index(r.stderr, "\nb\n")
			if r.stdout != "a\n" || line < 0 || out < 0 || out < line {
				t.Fatalf("%v run %d: the exec's line is not before its output:\n%v", user, i, r)
			}
		}
	}
}
