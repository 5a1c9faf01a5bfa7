//go:build linux && amd64

package linux

import (
	"os"
	"testing"

	"github.com/uexec/uexec/internal/testenv"
)

// TestMain removes the programs the tests built (testenv.BuildC), which
// would otherwise stay in the temporary directory after every run.
func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Cleanup()
	os.Exit(code)
}
