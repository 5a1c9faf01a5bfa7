package kernelexec

import (
	"bytes"
	"crypto/sha256"
	hexenc "encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

var buildMu sync.Mutex

// compiler is $CC, or gcc.
func compiler() string {
	if cc := os.Getenv("CC"); cc != "" {
		return cc
	}
	return "gcc"
}

// compileC compiles a one-file C program with the given flags and returns
// the executable's path. Results are cached by content (source, flags,
// compiler) in a directory under os.TempDir, so that repeated test runs
// and parallel packages share them and nothing accumulates.
func compileC(name, source string, flags []string) (string, error) {
	buildMu.Lock()
	defer buildMu.Unlock()
	cc := compiler()
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s", cc, strings.Join(flags, "\x00"), source)
	dir := filepath.Join(os.TempDir(), "uexec-kernelexec")
	out := filepath.Join(dir, name+"-"+hexenc.EncodeToString(h.Sum(nil))[:16])
	if fi, err := os.Stat(out); err == nil && fi.Mode().IsRegular() {
		return out, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	work, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	src := filepath.Join(work, name+".c")
	if err := os.WriteFile(src, []byte(source), 0o644); err != nil {
		return "", err
	}
	bin := filepath.Join(work, name)
	args := append(append([]string{"-o", bin}, flags...), src)
	cmd := exec.Command(cc, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("kernelexec: %s %s: %w\n%s", cc, strings.Join(args, " "), err, stderr.Bytes())
	}
	// Rename is atomic: a concurrent test binary sees all or nothing.
	if err := os.Rename(bin, out); err != nil {
		return "", err
	}
	return out, nil
}
