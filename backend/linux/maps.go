//go:build linux && amd64

package linux

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/uexec/uexec/vm"
)

// Mapping is one line of /proc/PID/maps.
type Mapping struct {
	vm.Range
	Perms  string // "r-xp"
	Offset uint64
	Dev    string // "fd:01"
	Inode  uint64
	Path   string // "", a file name, or "[stack]", "[vdso]", ...
}

func (m Mapping) String() string {
	return fmt.Sprintf("%08x-%08x %s %08x %s %d %s", uint64(m.Start), uint64(m.End), m.Perms, m.Offset, m.Dev, m.Inode, m.Path)
}

// ParseMaps parses the contents of a /proc/PID/maps file.
func ParseMaps(b []byte) ([]Mapping, error) {
	var out []Mapping
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		// start-end perms offset dev inode [path]; the path may hold
		// spaces and is preceded by padding.
		f := strings.SplitN(line, " ", 6)
		if len(f) < 5 {
			return nil, fmt.Errorf("maps line %q: %w", line, unix.EINVAL)
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		off, err3 := strconv.ParseUint(f[2], 16, 64)
		ino, err4 := strconv.ParseUint(f[4], 10, 64)
		if !ok || err1 != nil || err2 != nil || err3 != nil || err4 != nil {
			return nil, fmt.Errorf("maps line %q: %w", line, unix.EINVAL)
		}
		m := Mapping{Range: vm.Range{Start: vm.Addr(start), End: vm.Addr(end)}, Perms: f[1], Offset: off, Dev: f[3], Inode: ino}
		if len(f) == 6 {
			m.Path = strings.TrimLeft(f[5], " ")
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

func readMaps(pid int) ([]Mapping, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		return nil, err
	}
	return ParseMaps(b)
}

// special finds the vdso (with its vvar pages) and the stack in maps.
type special struct {
	vdsoSpan  vm.Range // [vvar .. vdso end): every [vvar*] and [vdso] mapping
	vdsoStart vm.Addr  // the [vdso] ELF image
	stack     vm.Range
}

func findSpecial(maps []Mapping) (special, error) {
	var s special
	for _, m := range maps {
		switch {
		case m.Path == "[stack]":
			s.stack = m.Range
		case m.Path == "[vdso]" || strings.HasPrefix(m.Path, "[vvar"):
			if m.Path == "[vdso]" {
				s.vdsoStart = m.Start
			}
			if s.vdsoSpan.End == 0 {
				s.vdsoSpan = m.Range
				continue
			}
			if m.Start != s.vdsoSpan.End {
				return s, fmt.Errorf("maps: vdso mappings are not contiguous at %v: %w", m.Start, unix.EINVAL)
			}
			s.vdsoSpan.End = m.End
		}
	}
	if s.stack.End == 0 {
		return s, fmt.Errorf("maps: no [stack] mapping: %w", unix.EINVAL)
	}
	return s, nil
}
