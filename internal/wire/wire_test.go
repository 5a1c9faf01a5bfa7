package wire

import (
	"bytes"
	"errors"
	"testing"
)

func sample() *Program {
	return &Program{
		StatusFD: 7,
		Ops: []Op{
			{Kind: Syscall, Nr: 9, V: [8]Value{Imm(0x1000), Imm(0x2000), Imm(3), Imm(0x22), Imm(^uint64(0)), Imm(0)}, Dst: RFirst, Flags: FlagMayFail},
			{Kind: Set, Dst: RFirst + 1, V: [8]Value{At(RTop, ^uint64(0x7f)), At(RFirst, 0)}},
			{Kind: Copy, V: [8]Value{At(RFirst+1, 0), At(RData, 0), Imm(4)}},
			{Kind: Finish, V: [8]Value{At(RVDSO, 0xef1), Imm(0x401000), At(RTop, ^uint64(0xff))}},
		},
		Data: []byte("data"),
	}
}

func TestRoundTrip(t *testing.T) {
	p := sample()
	b := p.Encode()
	q, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(q.Encode(), b) {
		t.Fatalf("re-encoding differs")
	}
	if q.StatusFD != 7 || len(q.Ops) != 4 || string(q.Data) != "data" || q.Ops[1].V[0] != At(RTop, ^uint64(0x7f)) {
		t.Fatalf("decoded %+v", q)
	}
}

// TestEncodeTo: a program encoded into memory that held a bigger one is
// the same bytes as one encoded afresh (the padding and unused fields are
// zeros, not what was there).
func TestEncodeTo(t *testing.T) {
	want := sample().Encode()
	dirty := bytes.Repeat([]byte{0xa5}, 4*len(want))
	got := sample().EncodeTo(dirty)
	if !bytes.Equal(got, want) {
		t.Fatalf("EncodeTo a used buffer:\n%x\nwant\n%x", got, want)
	}
	if &got[0] != &dirty[0] {
		t.Errorf("EncodeTo did not use the buffer it was given")
	}
	if small := sample().EncodeTo(make([]byte, 3)); !bytes.Equal(small, want) {
		t.Errorf("EncodeTo a buffer too small: %x", small)
	}
}

func TestDecodeRejects(t *testing.T) {
	good := sample().Encode()
	for _, tc := range []struct {
		name string
		edit func(b []byte) []byte
	}{
		{"short", func(b []byte) []byte { return b[:20] }},
		{"magic", func(b []byte) []byte { b[0] ^= 1; return b }},
		{"version", func(b []byte) []byte { b[4] = 9; return b }},
		{"op size", func(b []byte) []byte { b[12] = 72; return b }},
		{"too many ops", func(b []byte) []byte { b[8] = 200; return b }},
		{"truncated", func(b []byte) []byte { return b[:len(b)-1] }},
		{"kind", func(b []byte) []byte { b[HeaderSize] = 99; return b }},
		{"register", func(b []byte) []byte { b[HeaderSize+8] = NRegs; return b }},
		{"dst", func(b []byte) []byte { b[HeaderSize+2] = 40; return b }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.edit(append([]byte(nil), good...))
			if _, err := Decode(b); !errors.Is(err, ErrFormat) {
				t.Fatalf("Decode = %v, want ErrFormat", err)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(sample().Encode())
	f.Add((&Program{StatusFD: -1}).Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			return
		}
		// What decodes re-encodes to a plan that decodes the same.
		q, err := Decode(p.Encode())
		if err != nil {
			t.Fatalf("re-encoded plan: %v", err)
		}
		if len(q.Ops) != len(p.Ops) || !bytes.Equal(q.Data, p.Data) {
			t.Fatalf("round trip changed the plan")
		}
		_ = p.String()
	})
}
