package script

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/uexec/uexec/stack"
	"golang.org/x/sys/unix"
)

// buildPrintArgs compiles testdata/printargs.c into dir.
func buildPrintArgs(t *testing.T, dir string) string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("native comparison needs Linux")
	}
	cc, err := exec.LookPath("gcc")
	if err != nil {
		if cc, err = exec.LookPath("cc"); err != nil {
			t.Skip("no C compiler")
		}
	}
	src, err := filepath.Abs("testdata/printargs.c")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "printargs")
	if b, err := exec.Command(cc, "-O2", "-o", out, src).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cc, err, b)
	}
	return out
}

// runNative execs path with argv and no environment and returns the argv
// the program printed, or the errno of the exec.
func runNative(t *testing.T, dir, path string, argv []string) ([]string, error) {
	t.Helper()
	cmd := &exec.Cmd{Path: path, Args: argv, Dir: dir, Env: []string{}}
	out, err := cmd.Output()
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return nil, errno
	}
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	got := strings.Split(string(out), "\x00")
	return got[:len(got)-1], nil
}

// model predicts the argv of executing path: Parse and Rewrite for every
// #! level, as long as the interpreter is itself a script; or the errno.
func model(t *testing.T, dir, path string, argv []string) ([]string, error) {
	t.Helper()
	a, err := stack.NewArgs(argv, nil, path, 8<<20)
	if err != nil {
		return nil, err
	}
	for depth := 0; ; depth++ {
		full := path
		if !filepath.IsAbs(full) {
			full = filepath.Join(dir, path)
		}
		if path == "" {
			return nil, unix.EACCES // Linux opens the empty name as the cwd
		}
		b, err := os.ReadFile(full)
		if errors.Is(err, os.ErrNotExist) {
			return nil, unix.ENOENT
		}
		if err != nil {
			return nil, err
		}
		if !bytes.HasPrefix(b, []byte("#!")) {
			return a.Argv, nil
		}
		if depth == 5 {
			return nil, unix.ELOOP
		}
		interp, arg, hasArg, err := Parse(b)
		if err != nil {
			return nil, unix.ENOEXEC
		}
		if err := a.Rewrite(interp, arg, hasArg, path); err != nil {
			return nil, err
		}
		path = interp
	}
}

// TestNativeParse runs scripts with tricky #! lines natively and compares
// the argv their interpreter receives, or the errno, with Parse and
// Rewrite.
func TestNativeParse(t *testing.T) {
	dir := t.TempDir()
	p := buildPrintArgs(t, dir)
	// A name ending in CR exists too, so that the CR case runs.
	if err := os.Link(p, p+"\r"); err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
		return path
	}
	long := strings.Repeat("y", 400)
	for _, tc := range []struct {
		name, line string
		path       string // as passed; "" is the absolute path of the script
	}{
		{name: "plain", line: "#!" + p + "\n"},
		{name: "arg", line: "#!" + p + " -x\n"},
		{name: "one arg", line: "#!" + p + "  -x  -y \t\n"},
		{name: "leading blanks", line: "#! \t" + p + "\targ\n"},
		{name: "CR", line: "#!" + p + "\r\n"},
		{name: "CR arg", line: "#!" + p + " a\r\n"},
		{name: "NUL in arg", line: "#!" + p + " a\x00b\n"},
		{name: "empty arg", line: "#!" + p + " \x00b\n"},
		{name: "no newline", line: "#!" + p},
		{name: "no newline trailing blank", line: "#!" + p + " "},
		{name: "long arg", line: "#!" + p + " " + long + "\n"},
		{name: "long arg no newline", line: "#!" + p + " " + long},
		{name: "truncated name", line: "#!/" + strings.Repeat("a", 300)},
		{name: "name at the end", line: "#!" + strings.Repeat("/", 254-len(p)) + p + " x"},
		{name: "name fills the buffer", line: "#!" + strings.Repeat("/", 254-len(p)) + p},
		{name: "#! newline", line: "#!\n"},
		{name: "#! blanks newline", line: "#! \t \n"},
		{name: "bare #!", line: "#!"},
		{name: "#! blanks EOF", line: "#!   "},
		{name: "#! NUL name", line: "#!  \x00" + p + "\n"},
		{name: "all blanks", line: "#!" + strings.Repeat(" ", 300)},
		{name: "missing interpreter", line: "#!" + p + "-missing\n"},
		{name: "relative script path", line: "#!" + p + " r\n", path: "./s"},
		{name: "relative interpreter", line: "#!printargs\n", path: "./s"},
		{name: "self", line: "#!./s\n", path: "./s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			script := write("s", tc.line)
			path := tc.path
			if path == "" {
				path = script
			}
			argv := []string{"arg0", "a1", "a 2"}
			want, werr := model(t, dir, path, argv)
			got, gerr := runNative(t, dir, path, argv)
			if werr != nil || gerr != nil {
				if !errors.Is(werr, gerr) {
					t.Errorf("errno: Parse+Rewrite %v, kernel %v", werr, gerr)
				}
				return
			}
			if !slices.Equal(got, want) {
				t.Errorf("argv: kernel %q\nParse+Rewrite %q", got, want)
			}
		})
	}
	t.Run("nested", func(t *testing.T) {
		write("inner", "#!"+p+" inner-arg\n")
		outer := write("outer", "#!"+filepath.Join(dir, "inner")+" outer-arg\n")
		argv := []string{"x", "y"}
		want, werr := model(t, dir, outer, argv)
		got, gerr := runNative(t, dir, outer, argv)
		if werr != nil || gerr != nil || !slices.Equal(got, want) {
			t.Errorf("kernel %q %v\nParse+Rewrite %q %v", got, gerr, want, werr)
		}
	})
	t.Run("depth", func(t *testing.T) {
		// n scripts in a chain ending at printargs: 5 run, 6 are ELOOP.
		for _, n := range []int{5, 6} {
			prev := p
			for i := range n {
				prev = write("chain"+string(rune('a'+i)), "#!"+prev+"\n")
			}
			want, werr := model(t, dir, prev, []string{"z"})
			got, gerr := runNative(t, dir, prev, []string{"z"})
			if !errors.Is(werr, gerr) || !slices.Equal(got, want) {
				t.Errorf("%d levels: kernel %q %v\nParse+Rewrite %q %v", n, got, gerr, want, werr)
			}
			if n == 6 && gerr != unix.ELOOP {
				t.Errorf("6 levels: kernel %v, want ELOOP", gerr)
			}
		}
	})
}
