package segvguard_test

import (
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/execsw"
	"github.com/uexec/uexec/segvguard"
)

// clock is a fake clock, moved by the tests.
type clock struct{ t time.Time }

func (c *clock) now() time.Time    { return c.t }
func (c *clock) sleep(seconds int) { c.t = c.t.Add(time.Duration(seconds) * time.Second) }
func newGuard(cfg segvguard.Config) (*segvguard.Guard, *clock, *[]string) {
	c := &clock{t: time.Unix(1_000_000, 0)}
	var logs []string
	g := segvguard.New(cfg)
	g.Now = c.now
	g.Log = func(level segvguard.Level, msg string) {
		l := "info"
		if level == segvguard.Alert {
			l = "alert"
		}
		logs = append(logs, l+" "+msg)
	}
	return g, c, &logs
}

func check(g *segvguard.Guard, ino uint64, uid uint32, use execsw.Use) error {
	return g.Check(&execsw.PolicyCheck{
		Req: &execsw.Request{Cred: execsw.Cred{UID: uid}}, Path: "./crash", Resolved: "/t/crash",
		Attr: execsw.Attr{Dev: 8, Ino: ino}, Use: use,
	})
}

func crash(g *segvguard.Guard, ino uint64, uid uint32, sig syscall.Signal) {
	g.Crashed(segvguard.Crash{Dev: 8, Ino: ino, UID: uid, Name: "crash", Signal: sig})
}

func TestGuard(t *testing.T) {
	cfg := segvguard.Config{MaxCrashes: 5, ExpiryTimeout: 60, SuspendTimeout: 3}
	t.Run("suspended after MAX crashes in the window", func(t *testing.T) {
		g, c, logs := newGuard(cfg)
		for i := 0; i < 4; i++ {
			crash(g, 1, 0, syscall.SIGSEGV)
			c.sleep(1)
			if err := check(g, 1, 0, execsw.Direct); err != nil {
				t.Fatalf("after %d crashes: %v", i+1, err)
			}
		}
		crash(g, 1, 0, syscall.SIGSEGV)
		err := check(g, 1, 0, execsw.Direct)
		if !errors.Is(err, unix.EPERM) {
			t.Fatalf("after 5 crashes: %v, want EPERM", err)
		}
		var ee *execsw.ExecError
		if !errors.As(err, &ee) || ee.Path != "./crash" {
			t.Errorf("error %#v: want an *execsw.ExecError for ./crash", err)
		}
		want := []string{
			"alert PaX Segvguard: [crash] Suspending execution for 3 seconds after 5 crashes.",
			"alert PaX Segvguard: [/t/crash] Preventing execution due to repeated segfaults.",
		}
		if strings.Join(*logs, "\n") != strings.Join(want, "\n") {
			t.Errorf("logs:\n%s\nwant:\n%s", strings.Join(*logs, "\n"), strings.Join(want, "\n"))
		}
		// Other programs, other users and interpreters are not refused.
		for _, e := range []error{check(g, 2, 0, execsw.Direct), check(g, 1, 1000, execsw.Direct), check(g, 1, 0, execsw.Indirect)} {
			if e != nil {
				t.Errorf("unrelated exec refused: %v", e)
			}
		}
		// Suspended while suspended-until > now (whole seconds).
		c.sleep(2)
		if err := check(g, 1, 0, execsw.Direct); err == nil {
			t.Error("not suspended 2 s after")
		}
		c.sleep(1)
		if err := check(g, 1, 0, execsw.Direct); err != nil {
			t.Errorf("still suspended after SUSPEND: %v", err)
		}
	})
	t.Run("window fixed from the first crash", func(t *testing.T) {
		g, c, logs := newGuard(cfg)
		crash(g, 1, 0, syscall.SIGSEGV)
		c.sleep(59)
		for i := 0; i < 3; i++ {
			crash(g, 1, 0, syscall.SIGSEGV) // 2, 3, 4 within 60 s
		}
		c.sleep(2) // 61 s after the first: the window passed
		crash(g, 1, 0, syscall.SIGSEGV)
		if err := check(g, 1, 0, execsw.Direct); err != nil {
			t.Fatalf("a crash after the window suspended: %v", err)
		}
		if len(*logs) != 1 || (*logs)[0] != "info PaX Segvguard: [crash] Suspension expired." {
			t.Errorf("logs %q", *logs)
		}
		for i := 0; i < 4; i++ {
			crash(g, 1, 0, syscall.SIGABRT) // the new window counts from 1
		}
		if err := check(g, 1, 0, execsw.Direct); err == nil {
			t.Error("not suspended after 5 crashes in the new window")
		}
	})
	t.Run("a crash while suspended lifts the suspension", func(t *testing.T) {
		g, _, logs := newGuard(cfg)
		for i := 0; i < 5; i++ {
			crash(g, 1, 0, syscall.SIGSEGV)
		}
		crash(g, 1, 0, syscall.SIGSEGV) // e.g. an instance that was already running
		if err := check(g, 1, 0, execsw.Direct); err != nil {
			t.Errorf("still suspended: %v", err)
		}
		if last := (*logs)[len(*logs)-1]; !strings.HasSuffix(last, "Suspension expired.") {
			t.Errorf("last log %q", last)
		}
	})
	t.Run("signals that do not dump core do not count", func(t *testing.T) {
		g, _, _ := newGuard(cfg)
		for i := 0; i < 10; i++ {
			crash(g, 1, 0, syscall.SIGKILL)
			crash(g, 1, 0, syscall.SIGTERM)
		}
		if err := check(g, 1, 0, execsw.Direct); err != nil {
			t.Errorf("refused: %v", err)
		}
	})
	t.Run("per uid", func(t *testing.T) {
		g, _, _ := newGuard(cfg)
		for i := 0; i < 5; i++ {
			crash(g, 1, 65534, syscall.SIGSEGV)
			crash(g, 1, 0, syscall.SIGSEGV)
		}
		if check(g, 1, 65534, execsw.Direct) == nil || check(g, 1, 0, execsw.Direct) == nil {
			t.Error("not suspended for each uid")
		}
		if err := check(g, 1, 1000, execsw.Direct); err != nil {
			t.Errorf("uid 1000 refused: %v", err)
		}
	})
}

func TestCoreDumpSignal(t *testing.T) {
	core := map[syscall.Signal]bool{syscall.SIGQUIT: true, syscall.SIGILL: true, syscall.SIGTRAP: true,
		syscall.SIGABRT: true, syscall.SIGFPE: true, syscall.SIGSEGV: true, syscall.SIGBUS: true,
		syscall.SIGSYS: true, syscall.SIGXCPU: true, syscall.SIGXFSZ: true}
	for sig := syscall.Signal(1); sig < 65; sig++ {
		if got := segvguard.CoreDumpSignal(sig); got != core[sig] {
			t.Errorf("CoreDumpSignal(%v) = %v", sig, got)
		}
	}
}

func TestParseConfig(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want segvguard.Config
		ok   bool
	}{
		{"", segvguard.Config{MaxCrashes: 5, ExpiryTimeout: 120, SuspendTimeout: 600}, true},
		{"5,60,3", segvguard.Config{MaxCrashes: 5, ExpiryTimeout: 60, SuspendTimeout: 3}, true},
		{"5,60", segvguard.Config{}, false},
		{"0,60,3", segvguard.Config{}, false},
		{"5,x,3", segvguard.Config{}, false},
	} {
		got, err := segvguard.ParseConfig(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseConfig(%q) = %v, %v", tc.in, got, err)
		}
	}
}
