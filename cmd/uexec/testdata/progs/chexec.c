/* chexec PROG [ARG]...: prints its cwd, runs PROG in a child, prints its
 * status, then execs a missing file and prints the errno: a chroot'ed
 * caller's execs (TestTreeChrootCaller). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
	char cwd[4096];
	if (argc < 2 || !getcwd(cwd, sizeof cwd))
		return 2;
	printf("cwd %s\n", cwd);
	fflush(stdout);
	pid_t p = fork();
	if (p == 0) {
		execv(argv[1], argv + 1);
		printf("execv %s: %s\n", argv[1], strerror(errno));
		_exit(127);
	}
	int st;
	waitpid(p, &st, 0);
	printf("status %d\n", WEXITSTATUS(st));
	fflush(stdout);
	execv("/nonexistent-uexec", argv);
	printf("execv missing: %s\n", strerror(errno));
	return 0;
}
