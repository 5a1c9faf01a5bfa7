// launcher execs a program the way the stack tests need: optionally without
// address randomization, under a chosen RLIMIT_STACK and with generated
// arguments that would not fit through the test's own exec. On failure it
// prints the errno number and exits 127.
//
// usage: launcher [-r] [-s bytes|unlimited] [-n count -l len] path argv...
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv) {
	int norand = 0, opt;
	long n = 0, len = 0;
	char *stack = NULL;
	while ((opt = getopt(argc, argv, "+rs:n:l:")) != -1) {
		switch (opt) {
		case 'r': norand = 1; break;
		case 's': stack = optarg; break;
		case 'n': n = atol(optarg); break;
		case 'l': len = atol(optarg); break;
		default: return 126;
		}
	}
	if (optind >= argc) return 126;
	char *path = argv[optind++];
	int given = argc - optind;
	char **nargv = calloc(given + n + 1, sizeof(char *));
	for (int i = 0; i < given; i++) nargv[i] = argv[optind + i];
	if (n > 0) {
		char *s = malloc(len + 1);
		memset(s, 'x', len);
		s[len] = 0;
		for (long i = 0; i < n; i++) nargv[given + i] = s;
	}
	if (stack) {
		struct rlimit r;
		r.rlim_cur = r.rlim_max = strcmp(stack, "unlimited") == 0 ? RLIM_INFINITY : strtoull(stack, NULL, 0);
		if (setrlimit(RLIMIT_STACK, &r) != 0) { perror("setrlimit"); return 126; }
	}
	if (norand && personality(ADDR_NO_RANDOMIZE) == -1) { perror("personality"); return 126; }
	execve(path, nargv, environ);
	printf("%d\n", errno);
	return 127;
}
