//go:build linux && amd64

package linux

import (
	"os"
	"testing"

	"github.com/uexec/uexec/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
