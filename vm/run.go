package vm

import (
	"fmt"
	"syscall"
)

// Run applies cmds to as in order (the seed's vmcmd loop in execve1) and
// returns the commands with the addresses they landed at.
//
// A FlagBase command is placed where as chooses unless it is also FlagFixed;
// the FlagRelative commands after it move by the same distance. Any error
// stops the run: the caller is past the point of no return and must discard
// the address space.
func Run(as AddressSpace, cmds []Cmd) ([]Cmd, error) {
	out := make([]Cmd, 0, len(cmds))
	var delta uint64 // added (mod 2^64) to FlagRelative addresses
	for i, c := range cmds {
		if c.Flags&FlagRelative != 0 {
			c.Addr += Addr(delta)
		}
		fixed := c.Flags&(FlagFixed|FlagRelative) != 0
		got, err := runOne(as, c, fixed)
		if err != nil {
			return out, fmt.Errorf("vm command %d (%v): %w", i, c, err)
		}
		if c.Flags&FlagBase != 0 {
			delta = uint64(got) - uint64(c.Addr)
		}
		c.Addr = got
		out = append(out, c)
	}
	return out, nil
}

func runOne(as AddressSpace, c Cmd, fixed bool) (Addr, error) {
	if _, ok := c.End(); !ok {
		return 0, syscall.EINVAL
	}
	switch c.Op {
	case OpMap:
		if c.File == nil {
			return 0, syscall.EBADF
		}
		return as.MapFile(c.Addr, c.Len, c.Prot, c.File, c.Offset, fixed)
	case OpZero:
		if b, ok := as.(BrkMapper); ok && fixed {
			return b.MapBrk(c.Addr, c.Len, c.Prot)
		}
		return as.MapAnon(c.Addr, c.Len, c.Prot, fixed)
	case OpReserve:
		return as.MapAnon(c.Addr, c.Len, 0, fixed)
	case OpUnmap:
		return c.Addr, as.Unmap(c.Addr, c.Len)
	case OpClear:
		return c.Addr, as.Write(c.Addr, make([]byte, c.Len))
	case OpRead:
		if c.File == nil {
			return 0, syscall.EBADF
		}
		start := c.Addr.RoundDown()
		end, ok := c.Addr.Add(c.Len)
		if !ok {
			return 0, syscall.EINVAL
		}
		if end, ok = end.RoundUp(); !ok {
			return 0, syscall.EINVAL
		}
		got, err := as.MapAnon(start, uint64(end-start), ProtRead|ProtWrite, fixed)
		if err != nil {
			return 0, err
		}
		addr := got + Addr(c.Addr.PageOffset())
		buf := make([]byte, c.Len)
		if n, err := c.File.R.ReadAt(buf, int64(c.Offset)); n < len(buf) {
			if err == nil {
				err = syscall.EIO
			}
			return 0, fmt.Errorf("read %s at %#x: %w", c.File.Name(), c.Offset, err)
		}
		if err := as.Write(addr, buf); err != nil {
			return 0, err
		}
		if c.Prot != ProtRead|ProtWrite {
			if err := as.Protect(got, uint64(end-start), c.Prot); err != nil {
				return 0, err
			}
		}
		return addr, nil
	}
	return 0, fmt.Errorf("unknown op %v: %w", c.Op, syscall.EINVAL)
}
