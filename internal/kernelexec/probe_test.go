//go:build linux && amd64

package kernelexec

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func buildProbe(t *testing.T, mode ProbeMode) string {
	t.Helper()
	needCC(t)
	bin, err := BuildProbe(mode)
	if err != nil {
		skipOrFail(t, "cannot build the probe in mode %s: %v", mode, err)
	}
	return bin
}

func TestProbeNative(t *testing.T) {
	for _, mode := range ProbeModes {
		t.Run(string(mode), func(t *testing.T) {
			bin := buildProbe(t, mode)
			opts := Options{
				Path:     bin,
				Argv:     []string{"probe", "two words", "tab\there", "\x01\xff\\"},
				Envp:     []string{"A=1", "PROBE_MAPS=1", "EMPTY="},
				Dir:      t.TempDir(),
				NoRandom: true,
			}
			a, err := RunProbe(context.Background(), opts)
			if err != nil {
				t.Fatal(err)
			}
			b, err := RunProbe(context.Background(), opts)
			if err != nil {
				t.Fatal(err)
			}
			if d := DiffProbe(a, b, ProbeVolatile...); len(d) != 0 {
				t.Errorf("two native runs differ:\n%s", strings.Join(d, "\n"))
			}
			if d := DiffProbe(a, b); len(d) == 0 {
				t.Errorf("pid and AT_RANDOM identical in two runs")
			}
			checkProbe(t, a, opts, mode)
		})
	}
	checkNoChildren(t)
}

// checkProbe checks the probe's report against the exec contract
// (linux-exec.md sections 5 and 8).
func checkProbe(t *testing.T, p *ProbeOutput, opts Options, mode ProbeMode) {
	t.Helper()
	want := map[string]string{
		"probe.mode":              string(mode),
		"argc":                    fmt.Sprint(len(opts.Argv)),
		"argv[1]":                 "two words",
		"argv[2]":                 `tab\x09here`,
		"argv[3]":                 `\x01\xff\\`,
		"envc":                    fmt.Sprint(len(opts.Envp)),
		"envp[2]":                 "EMPTY=",
		"at_execfn":               opts.Path,
		"at_platform":             "x86_64",
		"at_entry_is_probe_entry": "yes",
		"auxv.proc_matches_stack": "yes",
		"proc.exe":                opts.Path,
		"proc.cwd":                opts.Dir,
		"proc.cmdline":            strings.ReplaceAll(strings.Join(append(opts.Argv, ""), `\x00`), "\t", `\x09`),
		"entry.rsp_mod16":         "0",
		"entry.mxcsr":             "0x1f80",
		"entry.fcw":               "0x37f",
		"entry.gs_base":           "0x0",
		"vdso.clock_gettime":      "ok",
		"libc.clock_gettime":      "ok",
		"rseq.reregister":         "EBUSY",
		"brk.grow_4096":           "ok",
		"malloc.64":               "ok",
		"malloc.1048576":          "ok",
		"personality":             "0x40000",
		"maps.stack":              p.Get("maps.stack"),
	}
	// proc.cmdline escapes the \x01\xff\\ argument too.
	want["proc.cmdline"] = `probe\x00two words\x00tab\x09here\x00\x01\xff\\\x00`
	for k, v := range want {
		if got := p.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if !strings.HasPrefix(p.Get("maps.stack"), "7ffffffde000-7ffffffff000 ") {
		t.Errorf("maps.stack = %q", p.Get("maps.stack"))
	}
	if !strings.HasPrefix(p.Get("proc.comm"), filepath.Base(opts.Path)[:min(15, len(filepath.Base(opts.Path)))]) {
		t.Errorf("proc.comm = %q", p.Get("proc.comm"))
	}
	if p.Get("maps[0]") == "" {
		t.Errorf("PROBE_MAPS=1 gave no maps[0]")
	}
	static := mode == ProbeStatic || mode == ProbeStaticPIE
	if from := p.Get("entry.from"); from != map[bool]string{true: "kernel", false: "ld.so"}[static] {
		t.Errorf("entry.from = %q", from)
	}
	if static {
		// The kernel's registers: all zero but rsp and rflags 0x202.
		for _, r := range []string{"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "fs_base"} {
			if v := p.Get("entry." + r); v != "0x0" {
				t.Errorf("entry.%s = %s, want 0x0", r, v)
			}
		}
		if v := p.Get("entry.rflags"); v != "0x202" {
			t.Errorf("entry.rflags = %s", v)
		}
	}
	if mode == ProbePIE && !strings.HasPrefix(p.Get("maps[0]"), "555555554000-") {
		t.Errorf("PIE not at 0x555555554000: %s", p.Get("maps[0]"))
	}
}

func TestProbeAgreesWithSnapshot(t *testing.T) {
	needPtrace(t)
	bin := buildProbe(t, ProbeStatic)
	opts := Options{Path: bin, Argv: []string{"p", "x"}, Envp: []string{"E=1"}, NoRandom: true}
	s, err := Snapshot(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	p, err := RunProbe(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	// The probe's entry rsp and the tracer's agree, and so do the mm fields.
	if got, want := p.Get("entry.rsp"), fmt.Sprintf("%#x", s.Regs.Rsp); got != want {
		t.Errorf("probe entry.rsp %s, ptrace rsp %s", got, want)
	}
	for _, f := range s.Stat.fields() {
		if got, want := p.Get("stat."+f.name), fmt.Sprintf("%#x", f.v); got != want {
			t.Errorf("stat.%s: probe %s, ptrace %s", f.name, got, want)
		}
	}
	for i, a := range s.Auxv {
		if a.Type == AT_RANDOM {
			continue
		}
		if got, want := p.Get(fmt.Sprintf("auxv.stack[%d]", i)), fmt.Sprintf("%s %#x", AuxName(a.Type), a.Val); got != want {
			t.Errorf("auxv[%d]: probe %s, ptrace %s", i, got, want)
		}
	}
}

func TestProbeRlimit(t *testing.T) {
	bin := buildProbe(t, ProbeStatic)
	p, err := RunProbe(context.Background(), Options{Path: bin, Argv: []string{"p"}, NoRandom: true,
		Rlimits: []Rlimit{{3, 4 << 20, 4 << 20}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Get("rlimit.stack.cur"); got != "0x400000" {
		t.Errorf("rlimit.stack.cur = %s", got)
	}
	if got := p.Get("personality"); got != "0x40000" {
		t.Errorf("personality = %s", got)
	}
}

func TestParseProbe(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		ok       bool
	}{
		{"good", "a=1\nb=x=y\nend=ok\n", true},
		{"empty value", "a=\nend=ok\n", true},
		{"no end", "a=1\n", false},
		{"dup", "a=1\na=2\nend=ok\n", false},
		{"no equals", "a\nend=ok\n", false},
		{"empty", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseProbe([]byte(tc.in))
			if (err == nil) != tc.ok {
				t.Errorf("err = %v", err)
			}
		})
	}
	a, _ := ParseProbe([]byte("k=1\npid=3\nonly_a=1\nend=ok\n"))
	b, _ := ParseProbe([]byte("k=2\npid=4\nend=ok\n"))
	got := DiffProbe(a, b, "pid")
	want := []string{"k: 1 != 2", "only_a: 1 != (absent)"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("DiffProbe = %q, want %q", got, want)
	}
	if d := DiffProbe(a, b, "k", "pid", "only*"); len(d) != 0 {
		t.Errorf("DiffProbe with ignores = %q", d)
	}
	if v, err := ProbeUnescape(`a\x00\\b`); err != nil || string(v) != "a\x00\\b" {
		t.Errorf("ProbeUnescape = %q, %v", v, err)
	}
}

func TestProbeSourceExists(t *testing.T) {
	p, err := ProbeSource()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
}
