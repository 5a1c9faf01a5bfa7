//go:build linux && amd64

package linux

// stepHook, when set, is called at each named step of a build (spawn.go,
// inplace.go) and of a redirected exec of a tree (notify.go), on the
// goroutine doing it. It is for fault tests only: set by the tests of this
// package, or, in a uexec binary built with -tags uexec_testhooks, from
// UEXEC_TEST_STOP_AT (stephook_testhooks.go), so that a test can stop uexec
// at a step and kill it (or the program) there. Production builds never
// set it.
var stepHook func(step string)

func step(name string) {
	if stepHook != nil {
		stepHook(name)
	}
}
