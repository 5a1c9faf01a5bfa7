package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/uexec/uexec/internal/testenv"
)

func runOut(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(strings.NewReader(""), &out, &errb, args); code != 0 {
		t.Fatalf("uexec %v: exit %d: %s", args, code, errb.String())
	}
	return out.String()
}

// TestUsageTable: --help, the man page and both completions are rendered
// from the one table of options, and the parser accepts every option of
// the table.
func TestUsageTable(t *testing.T) {
	help := runOut(t, "help")
	man := runOut(t, "man")
	bash := runOut(t, "completion", "bash")
	zsh := runOut(t, "completion", "zsh")
	manText := strings.ReplaceAll(man, `\-`, "-")
	for _, c := range cmdSpecs {
		if !strings.Contains(help, "  "+c.name+" ") || !strings.Contains(manText, ".B "+c.name) ||
			!strings.Contains(bash, c.name) || !strings.Contains(zsh, "'"+c.name+":") {
			t.Errorf("command %s missing from the help, man page or a completion", c.name)
		}
	}
	for _, g := range optGroups {
		for _, o := range g.opts {
			for _, name := range []string{o.short, o.long} {
				if name == "" {
					continue
				}
				if !strings.Contains(help, name) || !strings.Contains(manText, name) || !strings.Contains(bash, name) || !strings.Contains(zsh, name) {
					t.Errorf("option %s missing from the help, man page or a completion", name)
				}
			}
			cmds := []string{g.title}
			if g.title == "plan and run" {
				cmds = []string{"plan", "run"}
			}
			for _, cmd := range cmds {
				args := []string{o.long}
				switch {
				case o.arg == "N": // --veriexec-strict, which needs --veriexec
					args = append([]string{"--veriexec", "/dev/null"}, o.long, "2")
				case o.arg != "" && !o.argOptional:
					args = append(args, "/")
				}
				if _, err := parseOptions(append(args, "prog"), cmd); err != nil {
					t.Errorf("uexec %s %v: %v", cmd, args, err)
				}
			}
		}
	}
	if got := runOut(t, "run", "--help"); got != help {
		t.Errorf("uexec run --help differs from uexec help")
	}
}

// TestBashCompletion loads the bash completion and completes commands,
// options, option values and log commands.
func TestBashCompletion(t *testing.T) {
	bash := testenv.NeedTool(t, "bash")
	script := filepath.Join(t.TempDir(), "uexec.bash")
	if err := os.WriteFile(script, []byte(runOut(t, "completion", "bash")), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "subdir"), 0o755)
	for _, tc := range []struct {
		words string
		want  string
	}{
		{"uexec ru", "run"},
		{"uexec run --log", "--log-execs"},
		{"uexec plan --js", "--json"},
		{"uexec run -C sub", "subdir"},
		{"uexec log tr", "tree trace"},
		{"uexec completion z", "zsh"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), runDeadline)
		cmd := exec.CommandContext(ctx, bash, "--norc", "-c", `source "$1"; COMP_WORDS=($2); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _uexec; echo "${COMPREPLY[*]}"`, "bash", script, tc.words)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		cancel()
		if got := strings.TrimSpace(string(out)); err != nil || got != tc.want {
			t.Errorf("%q: completions %q, %v; want %q", tc.words, got, err, tc.want)
		}
	}
}

// TestManPage: uexec man is roff that groff formats without a warning.
func TestManPage(t *testing.T) {
	groff := testenv.NeedTool(t, "groff")
	man := filepath.Join(t.TempDir(), "uexec.1")
	if err := os.WriteFile(man, []byte(runOut(t, "man")), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), runDeadline)
	defer cancel()
	out, err := exec.CommandContext(ctx, groff, "-man", "-Tutf8", "-ww", "-z", man).CombinedOutput()
	if err != nil || len(out) != 0 {
		t.Errorf("groff: %v\n%s", err, out)
	}
}

// TestZshCompletion: zsh reads the generated completion without a syntax
// error.
func TestZshCompletion(t *testing.T) {
	zsh := testenv.NeedTool(t, "zsh")
	f := filepath.Join(t.TempDir(), "_uexec")
	if err := os.WriteFile(f, []byte(runOut(t, "completion", "zsh")), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, zsh, "-n", f).CombinedOutput(); err != nil {
		t.Fatalf("zsh -n: %v\n%s", err, out)
	}
}
