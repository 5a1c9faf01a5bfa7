//go:build race

package testenv

// Race reports whether the test binary is built with -race. It is then
// linked dynamically and its race runtime needs munmap and close: a seccomp
// filter that refuses them ends it before the code under test runs.
const Race = true
