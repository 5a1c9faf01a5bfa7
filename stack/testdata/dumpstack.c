// dumpstack writes its initial stack: one line with the initial stack
// pointer and the stack top in hex, then the raw bytes [sp, top).
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
	unsigned long sp = (unsigned long)argv - sizeof(long); /* argc is at rsp */
	unsigned long lo, hi = 0;
	char line[512];
	FILE *m = fopen("/proc/self/maps", "r");
	while (m && fgets(line, sizeof line, m))
		if (strstr(line, "[stack]") && sscanf(line, "%lx-%lx", &lo, &hi) == 2)
			break;
	printf("%lx %lx\n", sp, hi);
	fflush(stdout);
	const char *p = (const char *)sp;
	unsigned long n = hi - sp;
	while (n > 0) {
		ssize_t w = write(1, p, n);
		if (w <= 0) return 1;
		p += w;
		n -= w;
	}
	return 0;
}
