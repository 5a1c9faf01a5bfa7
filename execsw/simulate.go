package execsw

import (
	"fmt"

	"github.com/uexec/uexec/vm"
	"github.com/uexec/uexec/vm/sim"
)

// vsyscallLine is the legacy vsyscall page every x86-64 process shows
// (CONFIG_X86_VSYSCALL_EMULATION, vsyscall=xonly), above the user range.
const vsyscallLine = "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]"

// Simulate applies the plan to an in-memory address space: the vm
// commands, the vdso area, the [stack] mapping with the initial stack
// written into it. The result is what the new image's memory holds right
// after the exec, before its first instruction.
func (p *Plan) Simulate() (*sim.Space, error) {
	s := sim.New(p.Layout)
	// The [stack] mapping is there before the segments (setup_arg_pages
	// comes first): a segment mapped over it with MAP_FIXED takes its
	// pages.
	if p.Stack != nil {
		if err := s.AddRegion(p.StackVMA.Start, p.StackVMA.End, vm.ProtRead|vm.ProtWrite|p.stackExec(), "[stack]"); err != nil {
			return nil, fmt.Errorf("stack: %w", err)
		}
	}
	if _, err := vm.Run(s, p.Cmds); err != nil {
		return nil, err
	}
	if p.Stack != nil {
		s.LabelStack(p.MM.StartStack)
	}
	for _, r := range p.vdsoRegions {
		start := p.VvarStart + vm.Addr(r.Off)
		if err := s.AddRegion(start, start+vm.Addr(r.Len), parsePerms(r.Perms), r.Label); err != nil {
			return nil, fmt.Errorf("vdso region %s: %w", r.Label, err)
		}
	}
	if p.Stack != nil {
		if err := s.Write(p.Stack.SP, p.Stack.Bytes); err != nil {
			return nil, fmt.Errorf("stack: %w", err)
		}
	}
	s.LabelHeap(p.MM.StartBrk, p.MM.Brk)
	return s, nil
}

// Maps returns the lines /proc/PID/maps shows right after the exec.
func (p *Plan) Maps() ([]string, error) {
	s, err := p.Simulate()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range s.Mappings() {
		out = append(out, m.String())
	}
	if !p.Compat {
		out = append(out, vsyscallLine)
	}
	return out, nil
}

func (p *Plan) stackExec() vm.Prot {
	if p.ELF.ExecStack {
		return vm.ProtExec
	}
	return 0
}

func parsePerms(s string) vm.Prot {
	var p vm.Prot
	if len(s) >= 3 {
		if s[0] == 'r' {
			p |= vm.ProtRead
		}
		if s[1] == 'w' {
			p |= vm.ProtWrite
		}
		if s[2] == 'x' {
			p |= vm.ProtExec
		}
	}
	return p
}
