//go:build linux && amd64

package linux

import (
	"bytes"
	"os"
	"testing"

	"github.com/uexec/uexec/internal/planstub"
)

// TestStubPaths checks that both the memfd and the cached file hold the
// plan stub and are executable.
func TestStubPaths(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	c := &stubCache{elf: planstub.ELF, memfd: -1}
	file, err := c.cachedFile()
	if err != nil {
		t.Fatal(err)
	}
	mem, err := c.makeMemfd()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{mem, file} {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(b, planstub.ELF()) {
			t.Errorf("%s: does not hold the stub (%v)", p, err)
		}
		st, err := os.Stat(p)
		if err != nil || st.Mode()&0o111 == 0 {
			t.Errorf("%s: not executable: %v %v", p, st.Mode(), err)
		}
	}
}
