/* noroot BITS PROG ARG...: sets the securebits BITS (prctl
 * PR_SET_SECUREBITS; 1 is SECBIT_NOROOT: root's exec gives no
 * capabilities), then execs PROG. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv) {
	if (argc < 3) {
		fprintf(stderr, "usage: noroot BITS PROG ARG...\n");
		return 2;
	}
	if (prctl(PR_SET_SECUREBITS, strtoul(argv[1], 0, 0), 0, 0, 0) != 0) {
		perror("prctl(PR_SET_SECUREBITS)");
		return 1;
	}
	execv(argv[2], argv + 2);
	perror(argv[2]);
	return 127;
}
