package uexec_test

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec"
	"github.com/uexec/uexec/execsw"
	"github.com/uexec/uexec/format/binfmt"
)

type allowAll struct{}

// opaque is a handler that does not say whether it is Native.
type opaque struct{}

func (opaque) Name() string                   { return "opaque" }
func (opaque) HeaderSize() int                { return 4 }
func (opaque) MakeCmds(*execsw.Package) error { return unix.ENOEXEC }

func (allowAll) Check(*execsw.PolicyCheck) error { return nil }

// TestSwitchNative: a switch is Native (every plan the kernel's own exec,
// so that an ordinary user's tree may let the kernel do its execs unplanned)
// with Linux's handlers and an empty binfmt_misc, and not with a binfmt
// rule, a policy, autoload or a handler that cannot say.
func TestSwitchNative(t *testing.T) {
	e := uexec.NewEngine()
	if !e.Switch.Native() {
		t.Errorf("NewSwitch is not Native")
	}
	m := e.Binfmt()
	if !e.Switch.Native() {
		t.Errorf("an empty binfmt_misc makes the switch not Native")
	}
	r, err := binfmt.Parse(`:demo:E::demo::/bin/cat:`)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Register(r); err != nil {
		t.Fatal(err)
	}
	if e.Switch.Native() {
		t.Errorf("a binfmt rule: still Native")
	}
	if err := m.Unregister("demo"); err != nil {
		t.Fatal(err)
	}
	if !e.Switch.Native() {
		t.Errorf("the rule removed: not Native")
	}
	e.Switch.Policies = []execsw.Policy{allowAll{}}
	if e.Switch.Native() {
		t.Errorf("a policy: still Native")
	}
	e.Switch.Policies = nil
	e.Switch.Autoload = func(*execsw.Switch) {}
	if e.Switch.Native() {
		t.Errorf("autoload: still Native")
	}
	e.Switch.Autoload = nil
	if err := e.Switch.Add(opaque{}, execsw.PrioLast); err != nil {
		t.Fatal(err)
	}
	if e.Switch.Native() {
		t.Errorf("a handler that is not Native: still Native")
	}
}
