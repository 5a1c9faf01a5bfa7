package segvguard

import (
	"fmt"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/execsw"
)

// Level is a message's syslog priority, as kern_pax.c logs it.
type Level int

const (
	Info  Level = iota // LOG_INFO: "Suspension expired."
	Alert              // LOG_ALERT: suspending, preventing
)

// Crash is the death of a program by a signal, as Crashed is told of it.
type Crash struct {
	Dev, Ino uint64 // the program's file (execsw.Plan.Program)
	UID      uint32 // the real uid it ran with
	// Name is what the messages call it; NetBSD's sigexit passes p_comm.
	Name   string
	Signal syscall.Signal
}

// Guard is the segvguard state of every program it has seen crash, and
// the execsw.Policy that refuses the suspended ones. Its methods may be
// called from several goroutines.
type Guard struct {
	Config Config
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives each message, without NetBSD's trailing newline; nil
	// discards them.
	Log func(level Level, msg string)

	mu      sync.Mutex
	entries map[key]*entry
}

// key is a program for a user: NetBSD's vnode and uid lists flattened.
type key struct {
	dev, ino uint64
	uid      uint32
}

// entry is kern_pax.c's struct pax_segvguard_uid_entry.
type entry struct {
	ncrashes  int
	expiry    int64 // end of the crash window, seconds
	suspended int64 // suspended until, seconds
}

// New returns a Guard with cfg.
func New(cfg Config) *Guard { return &Guard{Config: cfg} }

func (g *Guard) now() int64 {
	if g.Now != nil {
		return g.Now().Unix()
	}
	return time.Now().Unix()
}

func (g *Guard) log(level Level, format string, args ...any) {
	if g.Log != nil {
		g.Log(level, "PaX Segvguard: "+fmt.Sprintf(format, args...))
	}
}

func name(s string) string {
	if s == "" {
		return "unknown" // kern_pax.c: name ? name : "unknown"
	}
	return s
}

// Check refuses, with EPERM, the exec of a program suspended for the
// caller's real uid (pax_segvguard with crashed false, from check_exec).
// Interpreters are not checked; see the package documentation.
func (g *Guard) Check(c *execsw.PolicyCheck) error {
	if c.Use != execsw.Direct {
		return nil
	}
	k := key{c.Attr.Dev, c.Attr.Ino, c.Req.Cred.UID}
	g.mu.Lock()
	e := g.entries[k]
	suspended := e != nil && e.suspended > g.now()
	g.mu.Unlock()
	if !suspended {
		return nil
	}
	nm := c.Resolved
	if nm == "" {
		nm = c.Path
	} else if filepath.IsAbs(nm) {
		nm = filepath.Clean(nm) // ep_resolvedname is a clean path
	}
	g.log(Alert, "[%s] Preventing execution due to repeated segfaults.", name(nm))
	return &execsw.ExecError{Path: c.Path, Reason: "PaX Segvguard: preventing execution due to repeated segfaults", Err: unix.EPERM}
}

// Crashed records a crash (pax_segvguard with crashed true, from
// sigexit). A death by a signal that does not dump core is ignored.
func (g *Guard) Crashed(c Crash) {
	if !CoreDumpSignal(c.Signal) {
		return
	}
	k := key{c.Dev, c.Ino, c.UID}
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	e := g.entries[k]
	if e == nil {
		// A program we do not know, or someone else running it: a new
		// window, with the count at 1 and no check of the maximum.
		if g.entries == nil {
			g.entries = map[key]*entry{}
		}
		g.entries[k] = &entry{ncrashes: 1, expiry: now + int64(g.Config.ExpiryTimeout)}
		return
	}
	if e.expiry < now {
		// The window passed (or is 0: suspended, or suspended once): a
		// new one. kern_pax.c says "Suspension expired." here, also when
		// there was no suspension.
		g.log(Info, "[%s] Suspension expired.", name(c.Name))
		*e = entry{ncrashes: 1, expiry: now + int64(g.Config.ExpiryTimeout)}
		return
	}
	e.ncrashes++
	if e.ncrashes >= g.Config.MaxCrashes {
		g.log(Alert, "[%s] Suspending execution for %d seconds after %d crashes.",
			name(c.Name), g.Config.SuspendTimeout, e.ncrashes)
		*e = entry{suspended: now + int64(g.Config.SuspendTimeout)}
	}
}
