package uexec_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/uexec/uexec"
	"github.com/uexec/uexec/internal/testenv"
)

func TestMain(m *testing.M) {
	if argv := os.Getenv("UEXEC_TEST_EXEC_IN_PLACE"); argv != "" {
		os.Exit(execInPlaceHelper(strings.Fields(argv), os.Getenv("UEXEC_TEST_BY_KERNEL") != ""))
	}
	os.Exit(testenv.Main(m))
}

// execInPlaceHelper is this test binary run by a test to replace itself
// with argv by Engine.ExecInPlace (TestExecInPlaceByKernel).
func execInPlaceHelper(argv []string, byKernel bool) int {
	e := uexec.NewEngine()
	req := &uexec.SpawnRequest{Path: argv[0], Argv: argv, Env: []string{}, ByKernel: byKernel,
		BeforeExec: func(kernel string) { fmt.Fprintf(os.Stderr, "kernel: %q\n", kernel) }}
	plan, err := e.Plan(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 126
	}
	err = e.ExecInPlace(plan, req)
	fmt.Fprintln(os.Stderr, err)
	return 126
}
