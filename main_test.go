package uexec_test

import (
	"os"
	"testing"

	"github.com/uexec/uexec/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
