package elf

import (
	"bytes"
	"debug/elf"
	"testing"

	"github.com/uexec/uexec/execsw"
	"github.com/uexec/uexec/internal/testelf"
	"github.com/uexec/uexec/vm"
)

// FuzzELF parses arbitrary files and plans them (without an interpreter
// file: PT_INTERP opens a stand-in): never a panic, never a hang, never more
// than the bounded allocations, and every planned command inside the user
// address range.
func FuzzELF(f *testing.F) {
	for _, tf := range []*testelf.File{
		exec64(), pie64("/ld"), loader64(),
		{Class: elf.ELFCLASS32, Type: elf.ET_DYN, Progs: []testelf.Prog{{Type: elf.PT_LOAD, Flags: elf.PF_R, Filesz: 0x100, Memsz: 0x2000, Align: 0x1000}}},
		{GarbageSections: true, Progs: []testelf.Prog{{Type: elf.PT_LOAD, Vaddr: 0x400000, Filesz: 0x80, Memsz: 0x80}}},
	} {
		f.Add(tf.Bytes())
	}
	interp := loader64().Bytes()
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err != nil {
			return
		}
		if _, err := ReadProgs(bytes.NewReader(b), h); err != nil {
			return
		}
		space := space64()
		ib := interp
		if h.Is32 {
			space = space32()
			g := loader64()
			g.Class = elf.ELFCLASS32
			ib = g.Bytes()
		}
		epp := &execsw.Package{
			Req:      &execsw.Request{NoRandom: true},
			Path:     "fuzz",
			File:     &vm.File{Path: "fuzz", R: bytes.NewReader(b), Size: int64(len(b))},
			Hdr:      b[:min(len(b), HeaderSize)],
			HdrValid: min(len(b), HeaderSize),
			Head:     b[:min(len(b), 4096)], // what the switch reads ahead
			Space:    space,
		}
		open := func(string) (*vm.File, error) {
			return &vm.File{Path: "interp", R: bytes.NewReader(ib), Size: int64(len(ib))}, nil
		}
		err = (Format{}).makeCmds(epp, open)
		for _, c := range epp.Cmds {
			end, ok := c.End()
			if !ok || uint64(end) > uint64(space.TaskSize) || c.Addr < space.MinAddr && c.Op != vm.OpClear {
				t.Fatalf("command %v outside the user range (err %v)", c, err)
			}
		}
	})
}
