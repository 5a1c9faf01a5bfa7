package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	backend "github.com/uexec/uexec/backend/linux"
	"github.com/uexec/uexec/execsw"
)

// execLogLine is one line of --log-execs (schema in README.md).
type execLogLine struct {
	Time   string        `json:"time"`
	Pid    int           `json:"pid"`
	Ppid   int           `json:"ppid"`
	Path   string        `json:"path"`
	Argv   []string      `json:"argv"`
	Chain  []execsw.Link `json:"chain"`
	Result string        `json:"result"`
	Error  string        `json:"error,omitempty"`
	By     string        `json:"by"`
	Note   string        `json:"note,omitempty"`

	Stopped bool `json:"stopped,omitempty"` // --stop-at-entry, --stop-at-exec
}

// execLog writes --log-execs lines; nil writes nothing.
type execLog struct {
	mu sync.Mutex
	w  io.Writer
	c  io.Closer
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
	return &execLog{w: f, c: f}, nil
}

func (l *execLog) close() {
	if l != nil && l.c != nil {
		l.c.Close()
	}
}

func (l *execLog) write(ev *backend.ExecEvent) {
	if l == nil {
		return
	}
	line := execLogLine{
		Time: ev.Time.UTC().Format(time.RFC3339Nano), Pid: ev.Pid, Ppid: ev.Ppid, Path: ev.Path,
		Argv: ev.Argv, Chain: ev.Chain, Result: "ok", By: ev.By, Note: ev.Note, Stopped: ev.Stopped,
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
	b, err := json.Marshal(line)
	if err != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "%s\n", b)
}
