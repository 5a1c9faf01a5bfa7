// Package wire is the plan's wire format: what the plan stub (package
// internal/planstub) executes to build an image in its own process.
//
// A program is a list of ops over 32 registers of 64 bits, and a data area
// (the stack image, the prctl_mm_map argument, comm, zero pages) that ops
// address through register RData. Every op operand is a Value: a register
// plus a constant, so that an address can follow what only the running
// stub knows: where the kernel put its stack (RTop) and vdso (RVDSO), and
// where a mapping without MAP_FIXED landed (a register an op set).
//
// Layout (little endian):
//
//	header  magic "UXPL" u32, version u32, nops u32, op size u32,
//	        status fd i64, data offset u64, data length u64, total size u64
//	ops     nops × 80 bytes: kind u8, flags u8, dst u8, cond u8, nr u32,
//	        reg [8]u8, imm [8]i64
//	data    at the data offset
//
// Value i of an op is R[reg[i]] + imm[i] (mod 2^64); R[0] is always 0.
// Values 0-5 are operands, value 6 the expected result (FlagExpect) and
// value 7 is added to the result before it is stored in R[dst] (dst 0
// stores nothing).
//
// # Security
//
// The stub trusts a plan only as far as its own process goes: a plan can
// make the stub do any system call, as the program it starts could. Decode
// checks everything the stub checks (sizes, register numbers, kinds), so a
// plan Decode accepts is one the stub runs op by op; it is fuzzed.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// Magic and Version identify the format (layout.h's PLAN_MAGIC and
// PLAN_VERSION).
const (
	Magic   = 0x4c505855 // "UXPL"
	Version = 1
	NRegs   = 32

	HeaderSize = 48
	OpSize     = 80
)

// Kind is what an op does.
type Kind uint8

const (
	Syscall Kind = iota + 1 // R = syscall nr(v0..v5); an error kills unless FlagMayFail
	Set                     // R = v0 + v1
	Min                     // R = min(v0, v1), unsigned
	Store                   // *(u64*)v0 = v1
	Copy                    // memcpy(v0, v1, v2)
	Fill0                   // memset(v0, 0, v1)
	Finish                  // unmap the stub and plan, enter v1 with rsp v2 via the vdso gadget at v0 (0: none), first through the image's bytes at v3 (0: none) that pop v4 (<= 32) words of v5
	Sub                     // R = v0 - v1
	Load                    // R = *(u64*)v0
	Check                   // kill the process (ESTALE) unless v0 == v1
)

var kindNames = [...]string{"", "syscall", "set", "min", "store", "copy", "fill0", "finish", "sub", "load", "check"}

func (k Kind) String() string {
	if int(k) < len(kindNames) && k != 0 {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Flags modify an op.
type Flags uint8

const (
	FlagMayFail Flags = 1 << iota // a syscall error is stored, not fatal
	FlagExpect                    // the syscall's result must be value 6
	FlagIfErr                     // run only if R[cond] holds an errno (-4095..-1)
	FlagIfOK                      // run only if it does not
)

// Registers the stub sets before the first op.
const (
	RZero     = 0 // always 0
	RData     = 1 // address of the data area
	RTop      = 2 // the stack top: end of the [stack] mapping
	RVDSO     = 3 // the stub's vdso (AT_SYSINFO_EHDR)
	RSP       = 4 // the stub's initial stack pointer
	RUnmapLen = 5 // length of the stub's mappings and the plan, from RESERVED_START
	RFirst    = 6 // the first register ops may set
)

// Value is a register plus a constant.
type Value struct {
	Reg uint8
	Imm uint64
}

// Imm is a constant Value; At(r, imm) one relative to register r.
func Imm(v uint64) Value            { return Value{Imm: v} }
func At(r uint8, imm uint64) Value  { return Value{Reg: r, Imm: imm} }
func (v Value) Plus(d uint64) Value { return Value{v.Reg, v.Imm + d} }

func (v Value) String() string {
	if v.Reg == 0 {
		return fmt.Sprintf("%#x", v.Imm)
	}
	if v.Imm == 0 {
		return fmt.Sprintf("r%d", v.Reg)
	}
	if int64(v.Imm) < 0 {
		return fmt.Sprintf("r%d-%#x", v.Reg, -v.Imm)
	}
	return fmt.Sprintf("r%d+%#x", v.Reg, v.Imm)
}

// Op is one step of a program. Name says what it is for, in listings and
// in the stub's failure reports; it is not encoded.
type Op struct {
	Kind  Kind
	Flags Flags
	Dst   uint8
	Cond  uint8
	Nr    uint32
	V     [8]Value
	Name  string
}

// Program is a decoded plan.
type Program struct {
	// StatusFD, when not -1, is where the stub writes {op index, result}
	// (two int64) before it kills itself.
	StatusFD int64
	Ops      []Op
	Data     []byte
}

// Encode returns the program's wire form.
func (p *Program) Encode() []byte { return p.EncodeTo(nil) }

// EncodeTo is Encode into buf's memory where it is large enough.
func (p *Program) EncodeTo(buf []byte) []byte {
	dataOff := HeaderSize + len(p.Ops)*OpSize
	dataOff = (dataOff + 15) &^ 15
	size := dataOff + len(p.Data)
	b := buf[:0]
	if cap(b) < size {
		b = make([]byte, size)
	} else {
		// Every byte but the padding before the data is written below.
		b = b[:size]
		clear(b[HeaderSize+len(p.Ops)*OpSize : dataOff])
	}
	le := binary.LittleEndian
	le.PutUint32(b[0:], Magic)
	le.PutUint32(b[4:], Version)
	le.PutUint32(b[8:], uint32(len(p.Ops)))
	le.PutUint32(b[12:], OpSize)
	le.PutUint64(b[16:], uint64(p.StatusFD))
	le.PutUint64(b[24:], uint64(dataOff))
	le.PutUint64(b[32:], uint64(len(p.Data)))
	le.PutUint64(b[40:], uint64(size))
	for i, o := range p.Ops {
		w := b[HeaderSize+i*OpSize:]
		w[0], w[1], w[2], w[3] = byte(o.Kind), byte(o.Flags), o.Dst, o.Cond
		le.PutUint32(w[4:], o.Nr)
		for j, v := range o.V {
			w[8+j] = v.Reg
			le.PutUint64(w[16+8*j:], v.Imm)
		}
	}
	copy(b[dataOff:], p.Data)
	return b
}

// ErrFormat is wrapped by every Decode error.
var ErrFormat = errors.New("malformed plan")

// Decode parses and checks a plan as the stub does.
func Decode(b []byte) (*Program, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrFormat}, a...)...)
	}
	if len(b) < HeaderSize {
		return nil, bad("%d bytes, shorter than the header", len(b))
	}
	le := binary.LittleEndian
	if m := le.Uint32(b); m != Magic {
		return nil, bad("magic %#x", m)
	}
	if v := le.Uint32(b[4:]); v != Version {
		return nil, bad("version %d, want %d", v, Version)
	}
	if s := le.Uint32(b[12:]); s != OpSize {
		return nil, bad("op size %d, want %d", s, OpSize)
	}
	nops := uint64(le.Uint32(b[8:]))
	dataOff, dataLen, size := le.Uint64(b[24:]), le.Uint64(b[32:]), le.Uint64(b[40:])
	n := uint64(len(b))
	if size != n || dataOff > n || dataLen > n-dataOff || nops > (n-HeaderSize)/OpSize || HeaderSize+nops*OpSize > dataOff {
		return nil, bad("sizes: %d ops, data %d+%d, total %d of %d bytes", nops, dataOff, dataLen, size, n)
	}
	p := &Program{StatusFD: int64(le.Uint64(b[16:])), Ops: make([]Op, nops)}
	for i := range p.Ops {
		w := b[HeaderSize+uint64(i)*OpSize:]
		o := Op{Kind: Kind(w[0]), Flags: Flags(w[1]), Dst: w[2], Cond: w[3], Nr: le.Uint32(w[4:])}
		if o.Kind < Syscall || o.Kind > Check {
			return nil, bad("op %d: kind %d", i, w[0])
		}
		if o.Dst >= NRegs || o.Cond >= NRegs {
			return nil, bad("op %d: register out of range", i)
		}
		for j := range o.V {
			o.V[j] = Value{Reg: w[8+j], Imm: le.Uint64(w[16+8*j:])}
			if o.V[j].Reg >= NRegs {
				return nil, bad("op %d: register r%d out of range", i, o.V[j].Reg)
			}
		}
		p.Ops[i] = o
	}
	p.Data = b[dataOff : dataOff+dataLen]
	return p, nil
}

// String lists the program, an op a line.
func (p *Program) String() string {
	var s strings.Builder
	for i, o := range p.Ops {
		fmt.Fprintf(&s, "%3d %-7v", i, o.Kind)
		nv := map[Kind]int{Syscall: 6, Set: 2, Min: 2, Store: 2, Copy: 3, Fill0: 2, Finish: 6, Sub: 2, Load: 1, Check: 2}[o.Kind]
		if o.Kind == Syscall {
			fmt.Fprintf(&s, " %d", o.Nr)
		}
		for j := 0; j < nv; j++ {
			fmt.Fprintf(&s, " %v", o.V[j])
		}
		if o.Dst != 0 {
			fmt.Fprintf(&s, " -> r%d", o.Dst)
			if o.V[7] != (Value{}) {
				fmt.Fprintf(&s, " (+%v)", o.V[7])
			}
		}
		if o.Flags&FlagIfErr != 0 {
			fmt.Fprintf(&s, " if r%d failed", o.Cond)
		}
		if o.Flags&FlagIfOK != 0 {
			fmt.Fprintf(&s, " if r%d ok", o.Cond)
		}
		if o.Name != "" {
			fmt.Fprintf(&s, "  # %s", o.Name)
		}
		s.WriteByte('\n')
	}
	fmt.Fprintf(&s, "data: %d bytes\n", len(p.Data))
	return s.String()
}
