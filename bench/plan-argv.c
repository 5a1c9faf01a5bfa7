// plan-argv: what handing the stub its plan in its argv would cost against
// the pipe it reads today (README, Benchmarks: measured and not kept). It
// times N vfork, exec and wait of itself as a small static child that
// either reads a 3.4 KB plan from a pipe on descriptor 3 into anonymous
// memory at the stub's plan address (as internal/planstub does) or decodes
// it from its argv (NUL and 0x01 escaped as 0x01 0x01 and 0x01 0x02),
// alternated, and prints both medians.
//
//	gcc -O2 -static -o /tmp/plan-argv bench/plan-argv.c && /tmp/plan-argv 3000
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PLAN_ADDR ((void *)0x10020000000)
#define PLAN_LEN 3416

static int child(char **argv)
{
	unsigned char *m = mmap(PLAN_ADDR, 65536, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (m != PLAN_ADDR)
		return 2;
	if (argv[1][0] == 'p') {
		lseek(3, 0, SEEK_END); /* the stub's ESPIPE test */
		long n = read(3, m, 65536);
		close(3);
		return n == PLAN_LEN ? 0 : 1;
	}
	const unsigned char *s = (const unsigned char *)argv[2];
	size_t j = 0;
	while (*s) {
		unsigned char c = *s++;
		if (c == 1)
			c = *s++ - 1;
		m[j++] = c;
	}
	return j == PLAN_LEN ? 0 : 1;
}

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "p") || !strcmp(argv[1], "a")))
		return child(argv);
	int n = argc > 1 ? atoi(argv[1]) : 3000;
	if (n < 1)
		n = 3000;
	unsigned char plan[PLAN_LEN];
	srand(1);
	for (size_t i = 0; i < PLAN_LEN; i++) /* about as many zeros as a plan has */
		plan[i] = rand() % 3 == 0 ? 0 : (unsigned char)rand();
	static char esc[2 * PLAN_LEN + 1];
	double *t[2] = {malloc(n * sizeof(double)), malloc(n * sizeof(double))};
	for (int i = 0; i < n; i++) {
		for (int mode = 0; mode < 2; mode++) {
			double t0 = now();
			pid_t pid;
			if (mode == 0) {
				int p[2];
				if (pipe2(p, O_CLOEXEC) || write(p[1], plan, PLAN_LEN) != PLAN_LEN)
					return perror("pipe"), 1;
				close(p[1]);
				pid = vfork();
				if (pid == 0) {
					if (p[0] == 3)
						fcntl(3, F_SETFD, 0);
					else
						dup2(p[0], 3);
					char *a[] = {argv[0], "p", 0};
					execve("/proc/self/exe", a, (char *[]){0});
					_exit(127);
				}
				close(p[0]);
			} else {
				size_t j = 0;
				for (size_t k = 0; k < PLAN_LEN; k++) {
					unsigned char c = plan[k];
					if (c < 2) {
						esc[j++] = 1;
						esc[j++] = (char)(c + 1);
					} else {
						esc[j++] = (char)c;
					}
				}
				esc[j] = 0;
				pid = vfork();
				if (pid == 0) {
					char *a[] = {argv[0], "a", esc, 0};
					execve("/proc/self/exe", a, (char *[]){0});
					_exit(127);
				}
			}
			int st;
			if (pid < 0 || waitpid(pid, &st, 0) != pid || st != 0)
				return fprintf(stderr, "plan-argv: child of mode %d: status %d\n", mode, st), 1;
			t[mode][i] = now() - t0;
		}
	}
	qsort(t[0], n, sizeof(double), cmp);
	qsort(t[1], n, sizeof(double), cmp);
	printf("plan on a pipe: median %.1f us; plan in argv: median %.1f us (%d each)\n", t[0][n / 2], t[1][n / 2], n);
	return 0;
}
