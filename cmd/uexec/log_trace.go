package main

import (
	"encoding/json"
	"io"
	"path/filepath"
)

// uexec log trace: the log in the Trace Event Format (the JSON Object
// Format of Google's "Trace Event Format" document), which Perfetto UI and
// chrome://tracing open. Each image a process ran is one complete event
// ("ph": "X"): from its exec to the process's next exec or its end;
// pid and tid are the process's, ts and dur microseconds from the log's
// first line. A metadata event names each process by its first image.

type traceEvent struct {
	Name string         `json:"name"`
	Cat  string         `json:"cat,omitempty"`
	Ph   string         `json:"ph"`
	Ts   float64        `json:"ts"`
	Dur  *float64       `json:"dur,omitempty"`
	Pid  int            `json:"pid"`
	Tid  int            `json:"tid"`
	Args map[string]any `json:"args,omitempty"`
}

type traceFile struct {
	TraceEvents     []traceEvent `json:"traceEvents"`
	DisplayTimeUnit string       `json:"displayTimeUnit"`
}

func renderTrace(w io.Writer, l *execLogFile) error {
	tf := traceFile{TraceEvents: []traceEvent{}, DisplayTimeUnit: "ms"}
	us := func(d float64) float64 { return float64(int64(d*1000)) / 1000 } // ns precision kept
	for _, p := range l.Procs {
		imgs := l.images(p)
		for i, img := range imgs {
			name := filepath.Base(img.Path)
			if len(img.Argv) > 0 && img.Argv[0] != "" {
				name = filepath.Base(img.Argv[0])
			}
			if i == 0 {
				tf.TraceEvents = append(tf.TraceEvents, traceEvent{Name: "process_name", Ph: "M", Pid: p.Pid, Tid: p.Pid,
					Args: map[string]any{"name": name}})
			}
			dur := us(float64(img.End.Sub(img.Time).Nanoseconds()) / 1000)
			args := map[string]any{"argv": img.Argv, "path": img.Path, "cwd": img.Cwd, "ppid": p.Ppid}
			if i == len(imgs)-1 {
				args["status"] = procSummary(l, p)
			}
			tf.TraceEvents = append(tf.TraceEvents, traceEvent{Name: name, Cat: "exec", Ph: "X",
				Ts: us(float64(img.Time.Sub(l.First).Nanoseconds()) / 1000), Dur: &dur, Pid: p.Pid, Tid: p.Pid, Args: args})
		}
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(tf)
}
