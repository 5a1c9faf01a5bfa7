// A Go program for the run corpus: goroutines, the environment, args.
package main

import (
	"fmt"
	"os"
	"sync"
)

func main() {
	var wg sync.WaitGroup
	sum := make(chan int, 10)
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func(i int) { defer wg.Done(); sum <- i }(i)
	}
	wg.Wait()
	close(sum)
	t := 0
	for v := range sum {
		t += v
	}
	fmt.Println("go", t, os.Args[1:], os.Getenv("HOME"))
}
