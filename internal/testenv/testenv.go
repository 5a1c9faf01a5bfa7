// Package testenv holds what uexec's tests share: skipping for a missing
// capability (a failure in CI, which sets UEXEC_REQUIRE_ALL=1) and building
// the test programs from source.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// RequireAll reports whether every capability-dependent test must run.
func RequireAll() bool { return os.Getenv("UEXEC_REQUIRE_ALL") == "1" }

// Need skips t when ok is false, or fails it when UEXEC_REQUIRE_ALL=1.
func Need(t testing.TB, ok bool, format string, args ...any) {
	t.Helper()
	if ok {
		return
	}
	if RequireAll() {
		t.Fatalf("required capability missing: "+format, args...)
	}
	t.Skipf(format, args...)
}

// NeedRoot needs uid 0.
func NeedRoot(t testing.TB) { t.Helper(); Need(t, os.Geteuid() == 0, "needs root") }

// NeedTool needs a program in PATH and returns its path.
func NeedTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	Need(t, err == nil, "needs %s: %v", name, err)
	return p
}

var cache struct {
	sync.Mutex
	dir   string
	built map[string]string
}

// BuildC compiles the C source src with gcc and flags (for example
// "-static" or "-static-pie") once per test binary and returns the
// program's path.
func BuildC(t testing.TB, src string, flags ...string) string {
	t.Helper()
	gcc := NeedTool(t, "gcc")
	cache.Lock()
	defer cache.Unlock()
	key := src + "\x00" + filepath.Join(flags...)
	if p, ok := cache.built[key]; ok {
		return p
	}
	if cache.dir == "" {
		d, err := os.MkdirTemp("", "uexec-test-bin-")
		if err != nil {
			t.Fatal(err)
		}
		cache.dir, cache.built = d, map[string]string{}
	}
	out := filepath.Join(cache.dir, "c"+itoa(len(cache.built)))
	cmd := exec.Command(gcc, append(append([]string{"-O1", "-o", out}, flags...), src)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gcc %v %s: %v\n%s", flags, src, err, b)
	}
	cache.built[key] = out
	return out
}

// BuildGo builds the Go main package in dir (a module-less single file is
// fine) and returns the binary's path.
func BuildGo(t testing.TB, src string, flags ...string) string {
	t.Helper()
	gobin := NeedTool(t, "go")
	cache.Lock()
	defer cache.Unlock()
	key := "go\x00" + src + "\x00" + filepath.Join(flags...)
	if p, ok := cache.built[key]; ok {
		return p
	}
	if cache.dir == "" {
		d, err := os.MkdirTemp("", "uexec-test-bin-")
		if err != nil {
			t.Fatal(err)
		}
		cache.dir, cache.built = d, map[string]string{}
	}
	out := filepath.Join(cache.dir, "go"+itoa(len(cache.built)))
	cmd := exec.Command(gobin, append(append([]string{"build", "-o", out}, flags...), src)...)
	cmd.Env = append(os.Environ(), "GO111MODULE=off", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", src, err, b)
	}
	cache.built[key] = out
	return out
}

// Cleanup removes the built programs; call it from TestMain.
func Cleanup() {
	cache.Lock()
	defer cache.Unlock()
	if cache.dir != "" {
		os.RemoveAll(cache.dir)
		cache.dir, cache.built = "", nil
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
