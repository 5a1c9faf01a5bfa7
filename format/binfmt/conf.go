package binfmt

import (
	"bufio"
	"errors"
	"fmt"
	"golang.org/x/sys/unix"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// SystemDirs are systemd-binfmt's binfmt.d directories, highest
// precedence first (systemd's CONF_PATHS_NULSTR("binfmt.d")).
var SystemDirs = []string{"/etc/binfmt.d", "/run/binfmt.d", "/usr/local/lib/binfmt.d", "/usr/lib/binfmt.d"}

// ReadConf reads a binfmt.d file (binfmt.d(5)) as systemd-binfmt does:
// lines end at a newline, a carriage return (CRLF is one end) or a NUL
// (read_line); spaces, tabs, CRs and newlines around a line are stripped
// (strstrip), other blanks are not; empty lines and lines starting with #
// or ; are skipped. Each rule reaches the kernel with a newline after it
// (write_string_file), which counts in its 1920 bytes: a rule of 1920 is
// refused. name names the file in errors ("FILE:LINE"). A line the kernel
// would refuse is an error.
func ReadConf(r io.Reader, name string) ([]*Rule, error) {
	var rules []*Rule
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 1<<20)
	sc.Split(scanConfLine)
	n := 1
	for ; sc.Scan(); n++ {
		line := strings.Trim(sc.Text(), " \t\r\n")
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		rule, err := Parse(line + "\n")
		if err != nil {
			var pe *ParseError
			if errors.As(err, &pe) {
				pe.Source = fmt.Sprintf("%s:%d", name, n)
				pe.Rule = line
				if len(line)+1 > maxRegister {
					pe.Reason = fmt.Sprintf("%d bytes and the newline systemd-binfmt writes after them, over %d", len(line), maxRegister)
				}
			}
			return nil, err
		}
		rule.Text = line
		rules = append(rules, rule)
	}
	if err := sc.Err(); err == bufio.ErrTooLong {
		// Far past what the kernel takes (a rule of 1920 bytes at most).
		return nil, fmt.Errorf("%s:%d: a line longer than 1 MiB: %w", name, n, unix.EINVAL)
	} else if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return rules, nil
}

// scanConfLine is a bufio.SplitFunc of systemd's read_line: a line ends at
// "\n", "\r", "\r\n" or NUL.
func scanConfLine(data []byte, atEOF bool) (advance int, token []byte, err error) {
	for i, b := range data {
		switch b {
		case '\n', 0:
			return i + 1, data[:i], nil
		case '\r':
			switch {
			case i+1 < len(data) && data[i+1] == '\n':
				return i + 2, data[:i], nil
			case i+1 < len(data) || atEOF:
				return i + 1, data[:i], nil
			}
			return 0, nil, nil // a newline may follow
		}
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// ConfFiles returns the *.conf files of dirs (highest precedence first)
// that systemd-binfmt applies, in the order it applies them: by file
// name, a name in a higher directory hiding the same name in lower ones,
// and a symlink to /dev/null (or an empty file) masking it. A directory
// that does not exist is skipped.
func ConfFiles(dirs ...string) ([]string, error) {
	chosen := map[string]string{}
	for _, d := range dirs {
		ents, err := os.ReadDir(d)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			name := e.Name()
			if !strings.HasSuffix(name, ".conf") || e.IsDir() {
				continue
			}
			if _, ok := chosen[name]; !ok {
				chosen[name] = filepath.Join(d, name)
			}
		}
	}
	var out []string
	for _, name := range slices.Sorted(mapKeys(chosen)) {
		p := chosen[name]
		if masked(p) {
			continue
		}
		out = append(out, p)
	}
	return out, nil
}

func mapKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// masked reports a file systemd treats as masking the name: a symlink to
// /dev/null, or an empty file (null_or_empty).
func masked(p string) bool {
	if t, err := os.Readlink(p); err == nil && t == "/dev/null" {
		return true
	}
	fi, err := os.Stat(p)
	return err == nil && (fi.Size() == 0 || fi.Mode()&os.ModeCharDevice != 0)
}

// LoadConf reads the rules of every file ConfFiles(dirs...) lists, in the
// order systemd-binfmt applies them.
func LoadConf(dirs ...string) ([]*Rule, error) {
	files, err := ConfFiles(dirs...)
	if err != nil {
		return nil, err
	}
	var rules []*Rule
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		r, err := ReadConf(f, p)
		f.Close()
		if err != nil {
			return nil, err
		}
		rules = append(rules, r...)
	}
	return rules, nil
}

// Apply registers rules in order the way systemd-binfmt writes them: a
// rule replaces a registered rule of the same name (it writes -1 to that
// entry first), and the last one applied is the newest, tried first.
func (m *Misc) Apply(rules []*Rule) error {
	for _, r := range rules {
		_ = m.Unregister(r.Name) // ENOENT: nothing to replace
		if err := m.Register(r); err != nil {
			return err
		}
	}
	return nil
}
