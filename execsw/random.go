package execsw

import (
	"encoding/binary"
	"fmt"
	"io"
)

// randPool serves an exec's random numbers (ASLR offsets, AT_RANDOM, the
// stack gap) from one read of its source, instead of a getrandom call for
// each of them.
type randPool struct {
	src io.Reader
	buf [128]byte
	off int // buf[off:] is unused
	err error
}

func newRandPool(src io.Reader) *randPool {
	return &randPool{src: src, off: len(randPool{}.buf)}
}

// Read implements io.Reader.
func (p *randPool) Read(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		if p.off == len(p.buf) {
			if _, err := io.ReadFull(p.src, p.buf[:]); err != nil {
				p.err = fmt.Errorf("randomness: %w", err)
				return n, p.err
			}
			p.off = 0
		}
		m := copy(b[n:], p.buf[p.off:])
		p.off += m
		n += m
	}
	return n, nil
}

// Uint64 returns 8 random bytes as a number; 0 once the source failed
// (then Err says why).
func (p *randPool) Uint64() uint64 {
	var b [8]byte
	if _, err := p.Read(b[:]); err != nil {
		return 0
	}
	return binary.LittleEndian.Uint64(b[:])
}
