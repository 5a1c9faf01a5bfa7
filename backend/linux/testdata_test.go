//go:build linux && amd64

package linux

// showSrc prints what a program observes of its exec: arguments,
// environment, comm, /proc/self/exe, open descriptors, a few aux vector
// entries and, with "maps" as argv[1], its own /proc/self/maps.
const showSrc = `#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/auxv.h>

extern char **environ;

static void cat(const char *path) {
	char buf[65536];
	int fd = open(path, O_RDONLY);
	if (fd < 0) { printf("%s: open failed\n", path); return; }
	ssize_t n;
	while ((n = read(fd, buf, sizeof buf)) > 0) fwrite(buf, 1, n, stdout);
	close(fd);
}

int main(int argc, char **argv) {
	printf("argc=%d\n", argc);
	for (int i = 0; i < argc; i++) printf("argv[%d]=%s\n", i, argv[i]);
	for (char **e = environ; *e; e++) printf("env=%s\n", *e);
	char exe[4096] = {0};
	readlink("/proc/self/exe", exe, sizeof exe - 1);
	printf("exe=%s\n", exe);
	printf("comm="); fflush(stdout); cat("/proc/self/comm");
	printf("execfn=%s\n", (char *)getauxval(AT_EXECFN));
	printf("secure=%lu uid=%lu euid=%lu pagesz=%lu\n", getauxval(AT_SECURE), getauxval(AT_UID), getauxval(AT_EUID), getauxval(AT_PAGESZ));
	printf("platform=%s\n", (char *)getauxval(AT_PLATFORM));
	printf("fds=");
	for (int fd = 0; fd < 64; fd++) if (fcntl(fd, F_GETFD) >= 0) printf("%d ", fd);
	printf("\n");
	void *p = malloc(100000);
	printf("malloc=%s\n", p ? "ok" : "failed");
	if (argc > 1 && strcmp(argv[1], "maps") == 0) {
		fflush(stdout);
		cat("/proc/self/maps");
		fflush(stdout);
	}
	if (argc > 1 && strcmp(argv[1], "stat") == 0) {
		fflush(stdout);
		cat("/proc/self/stat");
		fflush(stdout);
	}
	if (argc > 1 && strcmp(argv[1], "auxv") == 0) {
		unsigned long v[2];
		int fd = open("/proc/self/auxv", O_RDONLY);
		while (read(fd, v, sizeof v) == sizeof v && v[0] != 0) printf("auxv %lu %#lx\n", v[0], v[1]);
		close(fd);
	}
	return argc == 3 ? 3 : 0;
}
`

// goSrc is a Go program: the runtime reads the aux vector, starts threads
// and uses the vdso.
const goSrc = `package main

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"
)

func main() {
	var wg sync.WaitGroup
	sum := make([]int, 8)
	for i := range sum {
		wg.Add(1)
		go func() { defer wg.Done(); for j := 0; j < 1000; j++ { sum[i] += j } }()
	}
	wg.Wait()
	t := time.Now()
	fmt.Println("args", os.Args, "env", os.Environ(), "sum", sum[7], "goos", runtime.GOOS, t.Year() > 2000)
	os.Exit(7)
}
`
