package sys

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestRandomizeVASpace: the kept descriptor reads what a fresh read of the
// file does, each time.
func TestRandomizeVASpace(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/kernel/randomize_va_space")
	if err != nil {
		t.Skip(err)
	}
	want, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	for range 3 {
		if v, err := RandomizeVASpace(); err != nil || v != want {
			t.Fatalf("RandomizeVASpace() = %d, %v; the file says %d", v, err, want)
		}
	}
}
