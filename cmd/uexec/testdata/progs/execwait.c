/* execwait PIDFILE PROGRAM [ARG]...: writes its pid to PIDFILE (whole, by a
 * rename), then execs PROGRAM; when that fails it prints "errno N" and
 * sleeps 30 s without another exec, so that a test can look at the process
 * a failed exec left (its state, tracer, signal mask and descriptors). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char tmp[4096];
	FILE *f;
	int e;

	if (argc < 3)
		return 2;
	snprintf(tmp, sizeof tmp, "%s.tmp", argv[1]);
	f = fopen(tmp, "w");
	if (!f || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f) || rename(tmp, argv[1]))
		return 2;
	execv(argv[2], argv + 2);
	e = errno;
	printf("errno %d\n", e);
	fflush(stdout);
	sleep(30);
	return 0;
}
