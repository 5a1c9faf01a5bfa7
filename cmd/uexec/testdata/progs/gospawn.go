// gospawn N: 8 goroutines each run /bin/true N times with os/exec, from
// call depths that vary, and it prints how many failed. Go's os/exec
// forks with CLONE_VFORK|CLONE_VM: the child runs on the stack of the
// goroutine that forked it, in the parent's memory, and the pages below
// its stack pointer may be another goroutine's stack.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
)

func deep(n int, f func()) {
	var pad [64]byte
	_ = pad
	if n == 0 {
		f()
		return
	}
	deep(n-1, f)
}

func main() {
	n, _ := strconv.Atoi(os.Args[1])
	var wg sync.WaitGroup
	var mu sync.Mutex
	fails := 0
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n; i++ {
				deep(i%37, func() {
					if err := exec.Command("/bin/true").Run(); err != nil {
						mu.Lock()
						fails++
						mu.Unlock()
					}
				})
			}
		}()
	}
	wg.Wait()
	fmt.Println("failed:", fails)
}
