// Package testenv holds what uexec's tests share: skipping for a missing
// capability (a failure in CI, which sets UEXEC_REQUIRE_ALL=1), building
// the test programs from source, and listing what a test leaves behind.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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
	return build(t, "c", append([]string{src}, flags...), func(out string) *exec.Cmd {
		return exec.Command(gcc, append(append([]string{"-O1", "-o", out}, flags...), src)...)
	})
}

// BuildGo builds the single-file Go program src with go build and flags
// once per test binary and returns the binary's path.
func BuildGo(t testing.TB, src string, flags ...string) string {
	t.Helper()
	gobin := NeedTool(t, "go")
	return build(t, "go", append([]string{src}, flags...), func(out string) *exec.Cmd {
		cmd := exec.Command(gobin, append(append([]string{"build", "-o", out}, flags...), src)...)
		// GOFLAGS of the test's own build (-race) are not the
		// program's: -race needs cgo, and the program is static.
		cmd.Env = append(os.Environ(), "GO111MODULE=off", "CGO_ENABLED=0", "GOFLAGS=")
		return cmd
	})
}

// build runs the command cmd makes for an output path, once per key.
func build(t testing.TB, kind string, key []string, cmd func(out string) *exec.Cmd) string {
	t.Helper()
	cache.Lock()
	defer cache.Unlock()
	k := kind + "\x00" + strings.Join(key, "\x00")
	if p, ok := cache.built[k]; ok {
		return p
	}
	if cache.dir == "" {
		d, err := os.MkdirTemp("", "uexec-test-bin-")
		if err != nil {
			t.Fatal(err)
		}
		cache.dir, cache.built = d, map[string]string{}
	}
	out := filepath.Join(cache.dir, kind+strconv.Itoa(len(cache.built)))
	c := cmd(out)
	if b, err := c.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", c.Args, err, b)
	}
	cache.built[k] = out
	return out
}

// Main runs a package's tests and then Cleanup, for a TestMain of
// os.Exit(testenv.Main(m)): the built programs would otherwise stay in the
// temporary directory after every run.
func Main(m *testing.M) int {
	code := m.Run()
	Cleanup()
	return code
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

// SharedTempDir returns a new temporary directory that other users can
// reach (t.TempDir's parent is private to root), for tests that run
// programs under other ids.
func SharedTempDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// LineDiff lists the lines of want and got that differ, position by
// position, as "- want" / "+ got" pairs.
func LineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var x, y string
		if i < len(w) {
			x = w[i]
		}
		if i < len(g) {
			y = g[i]
		}
		if x != y {
			b.WriteString("- " + x + "\n+ " + y + "\n")
		}
	}
	return b.String()
}

// Children lists the pids of this process's children, zombies too (a child
// not yet reaped), sorted.
func Children(t testing.TB) []string {
	t.Helper()
	tasks, err := filepath.Glob("/proc/self/task/*/children")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // a thread that is gone
		}
		out = append(out, strings.Fields(string(b))...)
	}
	slices.Sort(out)
	return out
}
