/* execvecheck: execveat(AT_FDCWD, path, argv, envp, AT_EXECVE_CHECK) for
 * each argument: every check of an exec, no exec (Linux 6.14). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef AT_EXECVE_CHECK
#define AT_EXECVE_CHECK 0x10000
#endif

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		char *av[] = {argv[i], NULL};
		char *ev[] = {NULL};
		long r = syscall(SYS_execveat, AT_FDCWD, argv[i], av, ev, AT_EXECVE_CHECK);
		printf("%s: %ld %s\n", argv[i], r, r ? strerror(errno) : "ok");
	}
	return 0;
}
