package main

import (
	"regexp"
	"testing"
)

// TestCompilerNames compares gccName and clangName with Bear's patterns,
// which they write out.
func TestCompilerNames(t *testing.T) {
	gcc := regexp.MustCompile(`^(cc|c\+\+|cxx|CC|(([^-]*-)*([mg](cc|\+\+)|[g]?fortran)(-?\d+(\.\d+){0,2})?))$`)
	clang := regexp.MustCompile(`^([^-]*-)*clang(|\+\+)(-?\d+(\.\d+){0,2})?$`)
	names := []string{"", "cc", "c++", "cxx", "CC", "gcc", "g++", "mcc", "m++", "fortran", "gfortran",
		"gcc-12", "gcc12", "gcc-12.2", "gcc-12.2.0", "gcc-12.2.0.1", "gcc-", "gcc.", "gcc-1.", "gcc-.1",
		"x86_64-linux-gnu-gcc", "x86_64-linux-gnu-gcc-12", "aarch64-linux-gnu-g++-13.1", "-gcc", "--gcc",
		"gcc-gcc", "ccache", "c", "cc-12", "xcc", "clang", "clang++", "clang-18", "clang++-18.1.8",
		"clang18", "clang+", "clang+++", "arm-none-eabi-clang", "clang-cl", "clangd", "gccgo", "g++-", "gcc--1",
		"ggcc", "ffortran", "gfortran-9.3", "my-tool-mcc-1.2.3", "gcc-1-2", "clang-1.2.3.4", "a-b-"}
	for _, n := range names {
		if got, want := gccName(n), gcc.MatchString(n); got != want {
			t.Errorf("gccName(%q) = %v, Bear's pattern %v", n, got, want)
		}
		if got, want := clangName(n), clang.MatchString(n); got != want {
			t.Errorf("clangName(%q) = %v, Bear's pattern %v", n, got, want)
		}
	}
}
