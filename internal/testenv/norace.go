//go:build !race

package testenv

// Race reports whether the test binary is built with -race.
const Race = false
