// faultcost: what a page fault costs on this machine, the unit of most of
// what a Go binary's start costs beyond its system calls (README,
// Benchmarks: where the time of one exec goes). It times, five times each:
// a write to each 4 KiB page of fresh anonymous memory (one fault each),
// the same after MADV_POPULATE_WRITE (one call for all), a read of every
// 64 KiB of a file in the page cache (one fault each, which maps its
// fault-around window) and of every 4 KiB (the faults the window saves),
// and the first write to a 2 MiB range advised MADV_HUGEPAGE (one fault
// for a huge page, where transparent huge pages are "madvise" or "always").
//
//	gcc -O2 -o /tmp/faultcost bench/faultcost.c && /tmp/faultcost /path/to/a/big/file
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static void *anon(size_t len)
{
	void *p = mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		perror("mmap"), _exit(1);
	return p;
}

// touch writes (or reads) a byte every stride bytes of p[0:len] and
// returns the µs it took.
static double touch(volatile char *p, size_t len, size_t stride, int write)
{
	double t0 = now();
	for (size_t i = 0; i < len; i += stride) {
		if (write)
			p[i] = 1;
		else
			(void)p[i];
	}
	return now() - t0;
}

int main(int argc, char **argv)
{
	const size_t pages = 256, small = pages * 4096, huge = 2 << 20;
	if (argc < 2) {
		fprintf(stderr, "usage: faultcost FILE (4 MiB or more, read once first)\n");
		return 2;
	}
	int fd = open(argv[1], O_RDONLY);
	if (fd < 0)
		return perror(argv[1]), 1;
	for (int rep = 0; rep < 5; rep++) {
		char *p = anon(small);
		double faults = touch(p, small, 4096, 1);
		munmap(p, small);
		p = anon(small);
		double t0 = now();
		madvise(p, small, MADV_POPULATE_WRITE);
		double populate = now() - t0 + touch(p, small, 4096, 1);
		munmap(p, small);

		const size_t flen = 4 << 20;
		char *f = mmap(0, flen, PROT_READ, MAP_PRIVATE, fd, 0);
		if (f == MAP_FAILED)
			return perror("mmap of the file"), 1;
		double f64 = touch(f, flen, 65536, 0);
		munmap(f, flen);
		f = mmap(0, flen, PROT_READ, MAP_PRIVATE, fd, 0);
		double f4 = touch(f, flen, 4096, 0);
		munmap(f, flen);

		char *raw = anon(2 * huge);
		char *h = (char *)(((uintptr_t)raw + huge - 1) & ~(uintptr_t)(huge - 1));
		madvise(h, huge, MADV_HUGEPAGE);
		double thp = touch(h, huge, 4096, 1);
		munmap(raw, 2 * huge);

		printf("anon: %.2f us a 4 KiB fault, %.2f a page populated; file: %.2f us a fault (every 64 KiB), %.3f a 4 KiB page read; a 2 MiB THP range written: %.0f us\n",
		       faults / pages, populate / pages, f64 / (flen / 65536), f4 / (flen / 4096), thp);
	}
	return 0;
}
