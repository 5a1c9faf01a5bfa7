package kernelexec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
)

// ProbeMode is a way of building testdata/probe/probe.c.
type ProbeMode string

// The probe's build modes.
const (
	ProbePIE       ProbeMode = "pie"        // dynamic ET_DYN with PT_INTERP
	ProbeNoPIE     ProbeMode = "nopie"      // dynamic ET_EXEC
	ProbeStatic    ProbeMode = "static"     // static ET_EXEC
	ProbeStaticPIE ProbeMode = "static-pie" // ET_DYN without PT_INTERP
)

// ProbeModes lists every mode.
var ProbeModes = []ProbeMode{ProbePIE, ProbeNoPIE, ProbeStatic, ProbeStaticPIE}

// Flags are the compiler flags of the mode.
func (m ProbeMode) Flags() ([]string, error) {
	common := []string{"-O2", "-Wall", "-Wl,-e,probe_entry", fmt.Sprintf("-DPROBE_MODE=%q", string(m))}
	switch m {
	case ProbePIE:
		return append(common, "-fPIE", "-pie"), nil
	case ProbeNoPIE:
		return append(common, "-fno-pie", "-no-pie"), nil
	case ProbeStatic:
		return append(common, "-static", "-fno-pie", "-no-pie"), nil
	case ProbeStaticPIE:
		return append(common, "-static-pie", "-fPIE"), nil
	}
	return nil, fmt.Errorf("kernelexec: unknown probe mode %q", string(m))
}

// ProbeVolatile are the probe keys that differ between two runs of the
// same program with ASLR off.
var ProbeVolatile = []string{"pid", "ppid", "at_random.bytes"}

// ProbeSource returns the path of testdata/probe/probe.c, found from this
// source file's location (so it works from any package's tests in this
// module).
func ProbeSource() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("kernelexec: cannot locate the package source")
	}
	p := filepath.Join(filepath.Dir(file), "..", "..", "testdata", "probe", "probe.c")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("kernelexec: probe source: %w", err)
	}
	return p, nil
}

// BuildProbe compiles the probe in mode and returns the executable's path.
// Builds are cached by content under os.TempDir, so each mode is compiled
// once per source version, not once per test.
func BuildProbe(mode ProbeMode) (string, error) {
	flags, err := mode.Flags()
	if err != nil {
		return "", err
	}
	src, err := ProbeSource()
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return "", err
	}
	return compileC("probe-"+string(mode), string(b), flags)
}

// ProbeLine is one key=value line of the probe's output, value still
// escaped.
type ProbeLine struct {
	Key, Value string
}

// ProbeOutput is the parsed output of one probe run.
type ProbeOutput struct {
	Lines []ProbeLine // in output order
	Map   map[string]string
}

// Get returns the value of key ("" when absent).
func (p *ProbeOutput) Get(key string) string { return p.Map[key] }

// ParseProbe parses the probe's output: key=value lines, unique keys, the
// last one end=ok (a probe that died half way is an error).
func ParseProbe(out []byte) (*ProbeOutput, error) {
	p := &ProbeOutput{Map: map[string]string{}}
	for i, line := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("kernelexec: probe output line %d %q: no key=value", i+1, line)
		}
		if _, dup := p.Map[k]; dup {
			return nil, fmt.Errorf("kernelexec: probe output line %d: key %q repeated", i+1, k)
		}
		p.Map[k] = v
		p.Lines = append(p.Lines, ProbeLine{k, v})
	}
	if n := len(p.Lines); n == 0 || p.Lines[n-1] != (ProbeLine{"end", "ok"}) {
		return nil, fmt.Errorf("kernelexec: probe output incomplete (no end=ok after %d lines)", len(p.Lines))
	}
	return p, nil
}

// ProbeUnescape decodes a probe value (\\ and \xNN escapes).
func ProbeUnescape(s string) ([]byte, error) {
	var b []byte
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b = append(b, s[i])
			continue
		}
		switch {
		case i+1 < len(s) && s[i+1] == '\\':
			b = append(b, '\\')
			i++
		case i+3 < len(s) && s[i+1] == 'x':
			v, err := strconv.ParseUint(s[i+2:i+4], 16, 8)
			if err != nil {
				return nil, fmt.Errorf("kernelexec: bad escape in %q", s)
			}
			b = append(b, byte(v))
			i += 3
		default:
			return nil, fmt.Errorf("kernelexec: bad escape in %q", s)
		}
	}
	return b, nil
}

// DiffProbe lists the keys whose values differ between two probe outputs
// (or that one side lacks), in sorted order, as "key: a != b". An ignore
// entry ending in "*" skips every key with that prefix; others skip one key.
func DiffProbe(a, b *ProbeOutput, ignore ...string) []string {
	skip := func(k string) bool {
		for _, ig := range ignore {
			if p, ok := strings.CutSuffix(ig, "*"); ok && strings.HasPrefix(k, p) || ig == k {
				return true
			}
		}
		return false
	}
	keys := map[string]bool{}
	for k := range a.Map {
		keys[k] = true
	}
	for k := range b.Map {
		keys[k] = true
	}
	var sorted []string
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	var out []string
	for _, k := range sorted {
		if skip(k) {
			continue
		}
		va, okA := a.Map[k]
		vb, okB := b.Map[k]
		if !okA {
			va = "(absent)"
		}
		if !okB {
			vb = "(absent)"
		}
		if okA != okB || va != vb {
			out = append(out, fmt.Sprintf("%s: %s != %s", k, va, vb))
		}
	}
	return out
}
