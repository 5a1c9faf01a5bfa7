/* Uses malloc (brk), TLS, the vDSO clock and stdio. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static __thread int tls = 42;

int main(int argc, char **argv) {
	struct timespec ts;
	char *small = malloc(64), *big = malloc(1 << 20);
	if (!small || !big)
		return 2;
	memset(big, 1, 1 << 20);
	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0 || ts.tv_sec < 0)
		return 3;
	printf("hello tls=%d argc=%d", tls, argc);
	for (int i = 0; i < argc; i++)
		printf(" [%s]", argv[i]);
	printf("\n");
	return 0;
}
