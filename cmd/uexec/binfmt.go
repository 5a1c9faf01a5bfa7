package main

import (
	"fmt"
	"io"
	"os"

	"github.com/uexec/uexec"
	"github.com/uexec/uexec/execsw"
	"github.com/uexec/uexec/format/binfmt"
)

// binfmtSource is one --binfmt, --binfmt-dir or --binfmt-system option.
type binfmtSource struct {
	isRule bool
	rule   string
	dir    string
	system bool
}

// exsw builds the exec switch the options describe: Linux's handlers, and
// before them binfmt_misc with the rules given, registered in the order
// given. A rule given with --binfmt is registered as a write to the
// register file is (a name already registered is EEXIST); rules from
// binfmt.d files as systemd-binfmt applies them (a rule replaces one of
// its name).
func (o *options) exsw(logw io.Writer) (*execsw.Switch, error) {
	sw := uexec.NewSwitch()
	// check_exec's order: veriexec, then segvguard.
	if err := o.addVeriexec(sw); err != nil {
		return nil, err
	}
	o.addGuard(sw, logw)
	if len(o.binfmt) == 0 {
		return sw, nil
	}
	misc := &binfmt.Misc{}
	for _, src := range o.binfmt {
		switch {
		case src.isRule:
			r, err := binfmt.Parse(src.rule)
			if err == nil {
				err = misc.Register(r)
			}
			if err != nil {
				return nil, fmt.Errorf("--binfmt: %w", err)
			}
		default:
			dirs, opt := binfmt.SystemDirs, "--binfmt-system"
			if !src.system {
				dirs, opt = []string{src.dir}, "--binfmt-dir "+src.dir
				// systemd-binfmt skips a directory of its search
				// path that does not exist; a directory named here
				// that does not is a mistake, not an empty set.
				if _, err := os.Stat(src.dir); err != nil {
					return nil, fmt.Errorf("%s: %w", opt, unwrapErrno(err))
				}
			}
			rules, err := binfmt.LoadConf(dirs...)
			if err == nil {
				err = misc.Apply(rules)
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", opt, err)
			}
		}
	}
	if err := sw.Add(misc, execsw.PrioFirst); err != nil {
		return nil, err
	}
	return sw, nil
}

// usageError prints an error in uexec's options, with the errno the kernel
// would have given for the same request (a rule it refuses to register).
func usageError(w io.Writer, cmd string, err error) {
	if name := errnoName(err); name != "" {
		fmt.Fprintf(w, "uexec %s: %v (%s)\n", cmd, err, name)
		return
	}
	fmt.Fprintf(w, "uexec %s: %v\n", cmd, err)
}
