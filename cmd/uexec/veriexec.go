package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/uexec/uexec/execsw"
	"github.com/uexec/uexec/veriexec"
)

// veriexecOptions are --veriexec, --veriexec-strict and --veriexec-learn.
type veriexecOptions struct {
	file      string
	strict    veriexec.Strict
	hasStrict bool
	learn     string
	learner   *veriexec.Learner // set by addVeriexec
}

// parseVeriexec handles one veriexec option; ok is false for another one.
func (v *veriexecOptions) parse(name string, get func() string) (ok bool, err error) {
	switch name {
	case "--veriexec":
		// An empty name would read as no --veriexec: nothing verified.
		v.file = get()
		return true, nonEmpty(name, v.file)
	case "--veriexec-learn":
		v.learn = get()
		return true, nonEmpty(name, v.learn)
	case "--veriexec-strict":
		s := get()
		n, perr := strconv.Atoi(s)
		if perr != nil || n < 0 || n > 3 {
			return true, fmt.Errorf("--veriexec-strict %q: want 0 (learning), 1 (IDS), 2 (IPS) or 3 (lockdown)", s)
		}
		v.strict, v.hasStrict = veriexec.Strict(n), true
	default:
		return false, nil
	}
	return true, nil
}

// check refuses combinations that cannot mean what they say.
func (v *veriexecOptions) check(o *options, cmd string) error {
	switch {
	case v.hasStrict && v.file == "":
		return errors.New("--veriexec-strict needs --veriexec FILE")
	case v.learn != "" && cmd != "run":
		return errors.New("--veriexec-learn is an option of run")
	case v.learn != "" && v.file != "":
		return errors.New("--veriexec and --veriexec-learn exclude each other")
	case v.file != "" && !v.hasStrict:
		v.strict = veriexec.IPS // veriexec(8): IPS is what enforcement means
	}
	if v.file != "" && v.strict >= veriexec.IPS {
		// The kernel does these execs, unverified.
		if o.once {
			return fmt.Errorf("--veriexec at strict level %d: --once leaves the program's own execs to the kernel, unverified", v.strict)
		}
		if o.noWaitDesc {
			return fmt.Errorf("--veriexec at strict level %d: --no-wait-descendants leaves later execs to the kernel, unverified", v.strict)
		}
	}
	return nil
}

// addVeriexec appends the veriexec policy or the learner the options ask
// for to sw. Reports go to stderr.
func (o *options) addVeriexec(sw *execsw.Switch) error {
	v := &o.veriexec
	logf := func(format string, a ...any) { fmt.Fprintf(os.Stderr, "uexec: "+format+"\n", a...) }
	switch {
	case v.file != "":
		t, err := veriexec.Load(v.file)
		if err != nil {
			var pe *veriexec.ParseError
			if errors.As(err, &pe) {
				return err
			}
			return fmt.Errorf("--veriexec: %w", err)
		}
		for _, w := range t.Warnings {
			logf("warning: --veriexec %s", w)
		}
		p := t.Policy(v.strict)
		p.Logf = logf
		sw.Policies = append(sw.Policies, p)
	case v.learn != "":
		v.learner = veriexec.NewLearner(v.learn)
		if err := v.learner.Write(); err != nil {
			return fmt.Errorf("--veriexec-learn: %w", err) // said once, here
		}
		v.learner.Logf = logf
		sw.Policies = append(sw.Policies, v.learner)
	}
	return nil
}

// finishVeriexec writes the learned signatures once more as run ends (the
// learner already rewrote them at each new file).
func (o *options) finishVeriexec(stderr io.Writer) {
	if l := o.veriexec.learner; l != nil {
		if err := l.Write(); err != nil {
			fmt.Fprintf(stderr, "uexec: --veriexec-learn: %v\n", err)
		}
	}
}
