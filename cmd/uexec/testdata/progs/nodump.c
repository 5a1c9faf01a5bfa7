/* nodump PROG ARG...: makes itself not dumpable (prctl PR_SET_DUMPABLE 0:
 * an unprivileged process may then not read its memory), then execs PROG. */
#include <stdio.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv) {
	if (argc < 2 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
		fprintf(stderr, "usage: nodump PROG ARG...\n");
		return 2;
	}
	execv(argv[1], argv + 1);
	perror(argv[1]);
	return 127;
}
