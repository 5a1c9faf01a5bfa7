//go:build linux && amd64

package linux

import (
	"bytes"
	"os"
	"testing"
)

// TestStubPaths checks that both the memfd and the cached file hold the
// stub and are executable.
func TestStubPaths(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	file, err := StubFile()
	if err != nil {
		t.Fatal(err)
	}
	mem, err := StubPath()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{mem, file} {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(b, StubELF()) {
			t.Errorf("%s: does not hold the stub (%v)", p, err)
		}
		st, err := os.Stat(p)
		if err != nil || st.Mode()&0o111 == 0 {
			t.Errorf("%s: not executable: %v %v", p, st.Mode(), err)
		}
	}
}
