package main

import (
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestNoBackendImport: the command uses only the uexec package's API (and
// the core packages), never a backend directly: what it needs from one is
// the API's.
func TestNoBackendImport(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go files: %v", err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, "github.com/uexec/uexec/backend") {
				t.Errorf("%s imports %s", name, path)
			}
		}
	}
}

// TestNoDebugELF: uexec links neither debug/elf nor what it brings
// (compress/flate, internal/zstd, debug/dwarf): their initialisation cost
// every start ~30 µs before main, ~3% of `uexec run --once /bin/true`
// (format/elf has the constants it needs).
func TestNoDebugELF(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		switch pkg {
		case "debug/elf", "debug/dwarf", "compress/flate", "compress/zlib", "internal/zstd":
			t.Errorf("uexec links %s", pkg)
		}
	}
}
