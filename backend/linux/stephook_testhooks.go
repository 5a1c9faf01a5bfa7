//go:build linux && amd64 && uexec_testhooks

package linux

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Test only (built with -tags uexec_testhooks): UEXEC_TEST_STOP_AT=STEP[:N]
// stops this process at the Nth time (default 1) it reaches STEP. It then
// writes "STEP PID\n" to the file UEXEC_TEST_STOP_FILE and waits until a
// test removes that file (or kills this process); after a minute it goes
// on by itself, so that a broken test cannot hang.
func init() {
	at := os.Getenv("UEXEC_TEST_STOP_AT")
	file := os.Getenv("UEXEC_TEST_STOP_FILE")
	if at == "" || file == "" {
		return
	}
	name, nth := at, 1
	if i := strings.LastIndexByte(at, ':'); i >= 0 {
		if n, err := strconv.Atoi(at[i+1:]); err == nil {
			name, nth = at[:i], n
		}
	}
	var mu sync.Mutex
	seen := 0
	stepHook = func(s string) {
		if s != name {
			return
		}
		mu.Lock()
		seen++
		hit := seen == nth
		mu.Unlock()
		if !hit {
			return
		}
		// Written whole, then renamed: the test reads it as soon as it exists.
		if err := os.WriteFile(file+".tmp", fmt.Appendf(nil, "%s %d\n", s, os.Getpid()), 0o644); err != nil {
			return
		}
		if err := os.Rename(file+".tmp", file); err != nil {
			return
		}
		for end := time.Now().Add(time.Minute); time.Now().Before(end); time.Sleep(time.Millisecond) {
			if _, err := os.Stat(file); err != nil {
				return
			}
		}
	}
}
