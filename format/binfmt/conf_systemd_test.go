package binfmt

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/internal/testenv"
)

// TestReadConfLikeSystemd reads binfmt.d files with ReadConf and has
// systemd-binfmt register them with the kernel, in a user namespace of
// its own with a binfmt_misc of its own: ReadConf takes the rules the
// kernel took, and where systemd-binfmt reports a line refused, ReadConf
// refuses that line. Line ends, the blanks stripped around a line, and the
// newline systemd writes after a rule (which counts in the kernel's 1920
// bytes) are what it compares.
func TestReadConfLikeSystemd(t *testing.T) {
	sd := ""
	for _, p := range []string{"/lib/systemd/systemd-binfmt", "/usr/lib/systemd/systemd-binfmt"} {
		if _, err := os.Stat(p); err == nil {
			sd = p
			break
		}
	}
	testenv.Need(t, sd != "", "systemd-binfmt not installed (Debian: systemd)")
	unshare := testenv.NeedTool(t, "unshare")
	long := func(n int) string {
		r := ":long:E::ext::/" + strings.Repeat("a", n-16) + ":"
		if len(r) != n {
			t.Fatalf("a rule of %d bytes made %d", n, len(r))
		}
		return r
	}
	cases := []struct{ name, body string }{
		{"plain", "# comment\n; another\n\n   :a:E::x::/p:   \n\t:b:M::ab::/q:P\n"},
		{"CR", ":a:E::x::/p:\r:b:E::y::/p:\n"},
		{"CRLF", ":a:E::x::/p:\r\n\r\n:b:E::y::/p:\r\n"},
		{"NUL", ":a:E::x::/p:\x00:b:E::y::/p:\n"},
		{"no final newline", ":a:E::x::/p:"},
		{"vertical tab", ":a:E::x::/p:\v\n"},
		{"form feed", ":a:E::x::/p:\n:b:E::y::/p:\f\n"},
		{"no-break space", ":a:E::x::/p:\u00a0\n"},
		{"CRLF line number", ":a:E::x::/p:\r\n\r\n:bad:X::x::/p:\r\n"},
		{"1919 bytes", long(1919) + "\n"},
		{"1920 bytes", long(1920) + "\n"},
	}
	failed := regexp.MustCompile(`:(\d+): Failed to add binary format`)
	dir := t.TempDir()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conf := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".conf")
			if err := os.WriteFile(conf, []byte(tc.body), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			script := `mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || exit 99
"$0" "$1"
ls /proc/sys/fs/binfmt_misc`
			cmd := exec.CommandContext(ctx, unshare, "-Urm", "sh", "-c", script, sd, conf)
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			err := cmd.Run()
			if ctx.Err() != nil {
				t.Fatalf("systemd-binfmt did not end in 30 s: %s", errb.String())
			}
			var ee *exec.ExitError
			if errors.As(err, &ee) && ee.ExitCode() == 99 || err != nil && !errors.As(err, &ee) {
				testenv.Need(t, false, "binfmt_misc in a user namespace: %v: %s", err, errb.String())
			}
			var kernel []string
			for _, n := range strings.Fields(out.String()) {
				if n != "register" && n != "status" {
					kernel = append(kernel, n)
				}
			}
			firstBad := 0
			if m := failed.FindStringSubmatch(errb.String()); m != nil {
				firstBad, _ = strconv.Atoi(m[1])
			}
			rules, err := ReadConf(strings.NewReader(tc.body), conf)
			switch {
			case firstBad != 0:
				var pe *ParseError
				if !errors.As(err, &pe) || pe.Source != conf+":"+strconv.Itoa(firstBad) || !errors.Is(err, unix.EINVAL) {
					t.Errorf("systemd-binfmt: line %d refused (%s); ReadConf: %v", firstBad, strings.TrimSpace(errb.String()), err)
				}
			case err != nil:
				t.Errorf("systemd-binfmt registered %v; ReadConf: %v", kernel, err)
			default:
				var names []string
				for _, r := range rules {
					names = append(names, r.Name)
				}
				slices.Sort(names)
				if !slices.Equal(names, kernel) {
					t.Errorf("ReadConf: rules %v; systemd-binfmt registered %v", names, kernel)
				}
			}
		})
	}
}
