package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/uexec/uexec"
	"github.com/uexec/uexec/execsw"
	"github.com/uexec/uexec/segvguard"
)

// parseSegvguard reads --segvguard[=MAX,EXPIRY,SUSPEND]. The value is
// given only with "=": a separate word is the program.
func parseSegvguard(val string, hasVal bool) (*segvguard.Config, error) {
	if hasVal && val == "" {
		return nil, errors.New("--segvguard=: want MAX,EXPIRY,SUSPEND")
	}
	cfg, err := segvguard.ParseConfig(val)
	if err != nil {
		return nil, fmt.Errorf("--segvguard: %w", err)
	}
	return &cfg, nil
}

// errSegvguardOnce: with --once uexec is gone once the program runs, so
// nothing would see it crash and the guard would refuse nothing.
var errSegvguardOnce = errors.New("--segvguard needs tree mode: with --once uexec is gone after the exec and cannot count the crashes")

// addGuard puts the segvguard policy into sw, logging to w as NetBSD logs
// to the console: "uexec: PaX Segvguard: [...] ...".
func (o *options) addGuard(sw *execsw.Switch, w io.Writer) {
	if o.segvguard == nil {
		return
	}
	o.guard = segvguard.New(*o.segvguard)
	o.guard.Log = func(_ segvguard.Level, msg string) { fmt.Fprintf(w, "uexec: %s\n", msg) }
	sw.Policies = append(sw.Policies, o.guard)
}

// treeExits reports the ends of the tree's processes to the exec log and
// their deaths to the guard.
func (o *options) treeExits(elog *execLog) func(uexec.ExitEvent) {
	if o.guard == nil && elog == nil {
		return nil
	}
	g := o.guard
	return func(ev uexec.ExitEvent) {
		elog.exit(ev.Time, ev.Pid, ev.Status)
		if g != nil && ev.Planned && ev.Status.Signaled() {
			g.Crashed(segvguard.Crash{Dev: ev.Program.Dev, Ino: ev.Program.Ino, UID: ev.UID,
				Name: ev.Comm, Signal: ev.Status.Signal()})
		}
	}
}
