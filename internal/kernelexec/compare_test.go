//go:build linux && amd64

package kernelexec

import (
	"bytes"
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
)

func cloneSnap(s *Snap) *Snap {
	c := *s
	c.Maps = slices.Clone(s.Maps)
	c.Auxv = slices.Clone(s.Auxv)
	c.Stack = bytes.Clone(s.Stack)
	c.Status = maps.Clone(s.Status)
	c.Fds = maps.Clone(s.Fds)
	return &c
}

// TestCompareFindsDifferences mutates one field at a time and checks that
// Compare names it.
func TestCompareFindsDifferences(t *testing.T) {
	needPtrace(t)
	s, err := Snapshot(context.Background(), Options{Path: "/bin/true", Argv: []string{"true"}, Envp: []string{"A=1"}, NoRandom: true})
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.DecodeStack()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*Snap)
		field  string
		opts   CompareOptions
	}{
		{"rdx", func(s *Snap) { s.Regs.Rdx = 1 }, "regs.rdx", CompareOptions{}},
		{"rip", func(s *Snap) { s.Regs.Rip += 16 }, "regs.rip", CompareOptions{AllowASLR: true}},
		{"mxcsr", func(s *Snap) { s.FPRegs.Mxcsr = 0 }, "fpregs.mxcsr", CompareOptions{}},
		{"map perms", func(s *Snap) { s.Maps[0].Perms = "rwxp" }, "maps", CompareOptions{}},
		{"map moved", func(s *Snap) { s.Maps[0].Start += 0x1000 }, "maps", CompareOptions{AllowASLR: true}},
		{"aux value", func(s *Snap) { s.Auxv[2].Val ^= 1 }, "auxv[2] AT_HWCAP", CompareOptions{}},
		{"comm", func(s *Snap) { s.Comm = "x" }, "comm", CompareOptions{}},
		{"status", func(s *Snap) { s.Status["SigIgn"] = "1" }, "status.SigIgn", CompareOptions{}},
		{"brk", func(s *Snap) { s.Stat.StartBrk += 0x1000 }, "stat.start_brk", CompareOptions{}},
		{"random", func(s *Snap) { s.Stack[st.RandomAddr-s.StackAddr] ^= 1 }, "stack.random", CompareOptions{}},
		{"string", func(s *Snap) { s.Stack[len(s.Stack)-9] ^= 1 }, "stack.strings", CompareOptions{AllowASLR: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := cloneSnap(s)
			tc.mutate(m)
			ds := Compare(s, m, tc.opts)
			found := false
			for _, d := range ds {
				if strings.HasPrefix(d.Field, tc.field) {
					found = true
				}
			}
			if !found {
				t.Errorf("Compare did not report %s; got:\n%s", tc.field, joinDiffs(ds))
			}
			tc.opts.Ignore = []string{tc.field, "stack"}
			for _, d := range Compare(s, m, tc.opts) {
				if strings.HasPrefix(d.Field, tc.field) {
					t.Errorf("ignored field reported: %v", d)
				}
			}
		})
	}
	// The vdso can be ignored.
	m := cloneSnap(s)
	for i := range m.Maps {
		if isVDSO(m.Maps[i].Path) {
			m.Maps[i].Start += 0x100000
			m.Maps[i].End += 0x100000
		}
	}
	for i := range m.Auxv {
		if m.Auxv[i].Type == AT_SYSINFO_EHDR {
			m.Auxv[i].Val += 0x100000
		}
	}
	if ds := Compare(s, m, CompareOptions{IgnoreVDSO: true, Ignore: []string{"stack"}}); len(ds) != 0 {
		t.Errorf("IgnoreVDSO:\n%s", joinDiffs(ds))
	}
}
