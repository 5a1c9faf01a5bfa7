package kernelexec

import (
	"bytes"
	"fmt"
)

// StackInfo is the initial stack decoded: what a program finds at rsp.
type StackInfo struct {
	Argc     uint64
	ArgvAddr uint64   // &argv[0]
	Argv     []uint64 // argv pointers, without the NULL
	ArgvStr  []string
	EnvpAddr uint64
	Envp     []uint64
	EnvpStr  []string
	AuxvAddr uint64
	Auxv     []Aux // AT_NULL last

	RandomAddr   uint64
	Random       []byte // the 16 AT_RANDOM bytes
	ExecFnAddr   uint64
	ExecFn       string
	PlatformAddr uint64
	Platform     string

	// Top is the end of the stack bytes (the [stack] mapping's end).
	Top uint64
}

// DecodeStack reads argc, argv, envp and the aux vector from the stack
// bytes, as a program's _start does, and the strings they point to.
func (s *Snap) DecodeStack() (*StackInfo, error) {
	st := &StackInfo{Top: s.StackAddr + uint64(len(s.Stack))}
	off := uint64(0)
	word := func() (uint64, error) {
		if off+8 > uint64(len(s.Stack)) {
			return 0, fmt.Errorf("kernelexec: stack decode: word at %#x beyond the stack end %#x", s.StackAddr+off, st.Top)
		}
		v := le64(s.Stack[off:])
		off += 8
		return v, nil
	}
	var err error
	if st.Argc, err = word(); err != nil {
		return nil, err
	}
	if st.Argc > uint64(len(s.Stack))/8 {
		return nil, fmt.Errorf("kernelexec: stack decode: argc %d larger than the stack", st.Argc)
	}
	st.ArgvAddr = s.StackAddr + off
	for i := uint64(0); i < st.Argc; i++ {
		p, err := word()
		if err != nil {
			return nil, err
		}
		st.Argv = append(st.Argv, p)
	}
	if p, err := word(); err != nil {
		return nil, err
	} else if p != 0 {
		return nil, fmt.Errorf("kernelexec: stack decode: argv[argc] = %#x, not NULL", p)
	}
	st.EnvpAddr = s.StackAddr + off
	for {
		p, err := word()
		if err != nil {
			return nil, err
		}
		if p == 0 {
			break
		}
		st.Envp = append(st.Envp, p)
	}
	st.AuxvAddr = s.StackAddr + off
	for {
		t, err := word()
		if err != nil {
			return nil, err
		}
		v, err := word()
		if err != nil {
			return nil, err
		}
		st.Auxv = append(st.Auxv, Aux{t, v})
		if t == AT_NULL {
			break
		}
	}
	for _, p := range st.Argv {
		str, err := s.cstring(p)
		if err != nil {
			return nil, err
		}
		st.ArgvStr = append(st.ArgvStr, str)
	}
	for _, p := range st.Envp {
		str, err := s.cstring(p)
		if err != nil {
			return nil, err
		}
		st.EnvpStr = append(st.EnvpStr, str)
	}
	for _, a := range st.Auxv {
		switch a.Type {
		case AT_RANDOM:
			st.RandomAddr = a.Val
			if b, ok := s.stackBytes(a.Val, 16); ok {
				st.Random = b
			} else {
				return nil, fmt.Errorf("kernelexec: stack decode: AT_RANDOM %#x not on the stack", a.Val)
			}
		case AT_EXECFN:
			st.ExecFnAddr = a.Val
			if st.ExecFn, err = s.cstring(a.Val); err != nil {
				return nil, err
			}
		case AT_PLATFORM:
			st.PlatformAddr = a.Val
			if st.Platform, err = s.cstring(a.Val); err != nil {
				return nil, err
			}
		}
	}
	return st, nil
}

func (s *Snap) stackBytes(addr, n uint64) ([]byte, bool) {
	if addr < s.StackAddr || addr-s.StackAddr > uint64(len(s.Stack)) || uint64(len(s.Stack))-(addr-s.StackAddr) < n {
		return nil, false
	}
	o := addr - s.StackAddr
	return s.Stack[o : o+n], true
}

// cstring reads a NUL-terminated string from the stack bytes.
func (s *Snap) cstring(addr uint64) (string, error) {
	b, ok := s.stackBytes(addr, 0)
	if !ok {
		return "", fmt.Errorf("kernelexec: stack decode: string pointer %#x outside the stack [%#x, %#x)",
			addr, s.StackAddr, s.StackAddr+uint64(len(s.Stack)))
	}
	b = s.Stack[addr-s.StackAddr:]
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return "", fmt.Errorf("kernelexec: stack decode: string at %#x not terminated", addr)
	}
	return string(b[:i]), nil
}
