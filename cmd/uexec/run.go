package main

import (
	"context"
	"fmt"
	"io"
)

func cmdRun(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, args []string) int {
	fmt.Fprintln(stderr, "uexec run: not built yet")
	return exitUsage
}
