package execsw

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/uexec/uexec/stack"
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

// walkArgs is create_elf_tables' walk of the argument strings
// (strnlen_user from mm->arg_start), for a plan whose commands map over
// them: setup_arg_pages put them at the top of the stack before the
// segments were mapped, and a segment mapped there (its file bytes, or a
// bss's zeros) is what the walk measures. The argv and envp pointers, the
// mm fields and the stack's bytes from arg_start up become what the kernel
// leaves; a string the walk cannot read, or that has no NUL within
// MAX_ARG_STRLEN, fails the exec past the point of no return (EFAULT,
// EINVAL). Plans whose commands leave the strings alone are unchanged.
func (p *Plan) walkArgs() error {
	lay, top := p.Stack, p.Layout.StackTop
	strs := vm.Range{Start: lay.ArgStart, End: top}
	over := false
	for _, c := range p.Cmds {
		if end, ok := c.End(); ok && (vm.Range{Start: c.Addr, End: end}).Overlaps(strs) {
			over = true
		}
	}
	if !over {
		return nil
	}
	s := sim.New(p.Layout)
	if err := s.AddRegion(p.StackVMA.Start, p.StackVMA.End, vm.ProtRead|vm.ProtWrite, "[stack]"); err != nil {
		return err
	}
	from := int(lay.ArgStart - lay.SP)
	if err := s.Write(lay.ArgStart, lay.Bytes[from:]); err != nil {
		return err
	}
	if _, err := vm.Run(s, p.Cmds); err != nil {
		return nil // not modelled: the plan stands as it is
	}
	word := uint64(8)
	if p.Compat {
		word = 4
	}
	at := lay.ArgStart
	strlen := func() (uint64, error) {
		for n := uint64(0); n < stack.MaxArgStrLen; {
			a := at + vm.Addr(n)
			m, ok := s.Lookup(a)
			if !ok || m.Prot&vm.ProtRead == 0 {
				return 0, fmt.Errorf("%w: argument string at %v unreadable after the segments (EFAULT)", ErrFatal, at)
			}
			b, err := s.Read(a, int(vm.PageSize-a.PageOffset()))
			if err != nil {
				return 0, err
			}
			if i := bytes.IndexByte(b, 0); i >= 0 && n+uint64(i) < stack.MaxArgStrLen {
				return n + uint64(i) + 1, nil
			}
			n += uint64(len(b))
		}
		return 0, fmt.Errorf("%w: argument string at %v has no NUL within MAX_ARG_STRLEN after the segments (EINVAL)", ErrFatal, at)
	}
	vec := func(addr vm.Addr, n int) error {
		for i := range n {
			l, err := strlen()
			if err != nil {
				return err
			}
			off := uint64(addr-lay.SP) + uint64(i)*word
			if word == 8 {
				binary.LittleEndian.PutUint64(lay.Bytes[off:], uint64(at))
			} else {
				binary.LittleEndian.PutUint32(lay.Bytes[off:], uint32(at))
			}
			at += vm.Addr(l)
		}
		return nil
	}
	if err := vec(lay.ArgvAddr, lay.Argc); err != nil {
		return err
	}
	lay.ArgEnd, lay.EnvStart = at, at
	envc := int(uint64(lay.AuxvAddr-lay.EnvpAddr)/word) - 1
	if err := vec(lay.EnvpAddr, envc); err != nil {
		return err
	}
	lay.EnvEnd = at
	b, err := s.Read(lay.ArgStart, len(lay.Bytes)-from)
	if err != nil {
		return err
	}
	copy(lay.Bytes[from:], b)
	p.MM.ArgEnd, p.MM.EnvStart, p.MM.EnvEnd = lay.ArgEnd, lay.EnvStart, lay.EnvEnd
	return nil
}
