package veriexec

import (
	"crypto/sha256"
	"crypto/sha512"
	"hash"
	"strings"
)

// digest is a fingerprint type (NetBSD's veriexec_fpops).
type digest struct {
	name string // as veriexec(5) spells it
	size int    // bytes
	new  func() hash.Hash
}

// digests are the types uexec accepts. NetBSD also knows RMD160, SHA1 and
// MD5 when compiled in; they are refused here (unknown types are
// EOPNOTSUPP in veriexecctl), as a collision in them is within reach.
var digests = []*digest{
	{"SHA256", sha256.Size, sha256.New},
	{"SHA384", sha512.Size384, sha512.New384},
	{"SHA512", sha512.Size, sha512.New},
}

func digestNamed(name string) *digest {
	for _, d := range digests {
		if strings.EqualFold(d.name, name) {
			return d
		}
	}
	return nil
}
