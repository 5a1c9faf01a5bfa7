package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec"
	"github.com/uexec/uexec/execsw"
)

// execLogLine is one exec line of --log-execs (schema in README.md).
type execLogLine struct {
	Event  string        `json:"event"` // "exec"
	Time   string        `json:"time"`
	Pid    int           `json:"pid"`
	Tgid   int           `json:"tgid,omitempty"` // when a thread exec'd: the process's id
	Ppid   int           `json:"ppid"`
	Cwd    string        `json:"cwd"`
	Path   string        `json:"path"`
	Argv   []string      `json:"argv"`
	Chain  []execsw.Link `json:"chain"`
	Result string        `json:"result"`
	Error  string        `json:"error,omitempty"`
	By     string        `json:"by"`
	Note   string        `json:"note,omitempty"`

	Stopped bool `json:"stopped,omitempty"` // --stop-at-entry, --stop-at-exec
	Check   bool `json:"check,omitempty"`   // execveat(AT_EXECVE_CHECK): no exec
}

// execLog writes --log-execs lines; nil writes nothing.
type execLog struct {
	mu   sync.Mutex
	w    io.Writer
	c    io.Closer
	name string
	err  error // the first failed write or close of a file
}

func openExecLog(name string, stderr io.Writer) (*execLog, error) {
	if name == "" {
		return nil, nil
	}
	if name == "-" {
		return &execLog{w: stderr}, nil
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	return &execLog{w: f, c: f, name: name}, nil
}

// regularFile reports whether the log is written to a regular file.
func (l *execLog) regularFile() bool {
	if l == nil || l.c == nil {
		return false
	}
	f, ok := l.c.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode().IsRegular()
}

// close closes the log's file, once, and returns the first error of its
// writes or of the close: a log that lost lines (a full disk) must not pass
// for a whole one.
func (l *execLog) close() error {
	if l == nil || l.c == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if c := l.c; c != nil {
		l.c = nil
		if err := c.Close(); err != nil && l.err == nil {
			l.err = err
		}
	}
	if l.err != nil {
		return fmt.Errorf("--log-execs %s: %w", l.name, l.err)
	}
	return nil
}

func (l *execLog) write(ev uexec.ExecEvent) {
	if l == nil {
		return
	}
	line := execLogLine{Event: "exec",
		Time: ev.Time.UTC().Format(time.RFC3339Nano), Pid: ev.Pid, Ppid: ev.Ppid, Cwd: ev.Cwd, Path: ev.Path,
		Argv: ev.Argv, Chain: ev.Chain, Result: "ok", By: ev.By, Note: ev.Note, Stopped: ev.Stopped, Check: ev.Check,
	}
	if ev.Tgid != 0 && ev.Tgid != ev.Pid {
		line.Tgid = ev.Tgid
	}
	if line.Argv == nil {
		line.Argv = []string{}
	}
	if line.Chain == nil {
		line.Chain = []execsw.Link{}
	}
	if ev.Err != nil {
		line.Result = errnoName(ev.Err)
		if line.Result == "" || errors.Is(ev.Err, execsw.ErrFatal) || ev.Note != "" && ev.By == "uexec" {
			line.Result = "SIGSEGV"
		}
		line.Error = ev.Err.Error()
	}
	if ev.By == "kernel" && ev.Err == nil {
		line.Result = "kernel"
	}
	l.line(line)
}

// exitLogLine is the exit line of a process: its status or the signal
// it died of.
type exitLogLine struct {
	Event  string `json:"event"` // "exit"
	Time   string `json:"time"`
	Pid    int    `json:"pid"`
	Status *int   `json:"status,omitempty"`
	Signal string `json:"signal,omitempty"`
	Core   bool   `json:"core,omitempty"`
}

// exit writes the exit line of process pid, which ended with ws at t.
func (l *execLog) exit(t time.Time, pid int, ws syscall.WaitStatus) {
	if l == nil {
		return
	}
	line := exitLogLine{Event: "exit", Time: t.UTC().Format(time.RFC3339Nano), Pid: pid}
	if ws.Signaled() {
		line.Signal, line.Core = unix.SignalName(ws.Signal()), ws.CoreDump()
		if line.Signal == "" {
			line.Signal = fmt.Sprintf("SIG%d", int(ws.Signal()))
		}
	} else {
		st := ws.ExitStatus()
		line.Status = &st
	}
	l.line(line)
}

func (l *execLog) line(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := fmt.Fprintf(l.w, "%s\n", b); err != nil && l.c != nil && l.err == nil {
		l.err = err
	}
}
