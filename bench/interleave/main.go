// Command interleave runs commands in turn, one run of each per round, and
// prints each one's median wall time (start to reaped) and quartiles. On a
// machine whose speed drifts between runs by more than the differences
// measured (this project's shared 2-vCPU guests: ±15% within an hour), a
// comparison of medians taken in the same rounds is steadier than one of
// benchmarks run one after the other (hyperfine's way).
//
//	interleave [-n ROUNDS] [-w WARMUP] CMD [ARG]... [-- CMD [ARG]...]...
package main

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

func main() {
	n := flag.Int("n", 500, "rounds")
	warm := flag.Int("w", 20, "rounds run first and not counted")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: interleave [-n ROUNDS] [-w WARMUP] CMD [ARG]... [-- CMD [ARG]...]...")
		flag.PrintDefaults()
	}
	flag.Parse()
	var cmds [][]string
	cur := []string{}
	for _, a := range flag.Args() {
		if a == "--" {
			cmds, cur = append(cmds, cur), []string{}
			continue
		}
		cur = append(cur, a)
	}
	cmds = append(cmds, cur)
	for _, c := range cmds {
		if len(c) == 0 || *n < 1 {
			flag.Usage()
			os.Exit(2)
		}
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		fail(err)
	}
	attr := &os.ProcAttr{Files: []*os.File{devnull, devnull, os.Stderr}}
	times := make([][]time.Duration, len(cmds))
	for r := -*warm; r < *n; r++ {
		for i, c := range cmds {
			t0 := time.Now()
			p, err := os.StartProcess(c[0], c, attr)
			if err != nil {
				fail(err)
			}
			st, err := p.Wait()
			if err != nil {
				fail(err)
			}
			d := time.Since(t0)
			if !st.Success() {
				fail(fmt.Errorf("%s: %v", strings.Join(c, " "), st))
			}
			if r >= 0 {
				times[i] = append(times[i], d)
			}
		}
	}
	for i, c := range cmds {
		t := times[i]
		slices.Sort(t)
		us := func(q int) float64 { return float64(t[(len(t)-1)*q/4].Nanoseconds()) / 1e3 }
		fmt.Printf("%8.0f us median (%6.0f–%6.0f quartiles)  %s\n", us(2), us(1), us(3), strings.Join(c, " "))
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "interleave:", err)
	os.Exit(1)
}
