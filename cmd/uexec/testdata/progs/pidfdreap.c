/* pidfdreap: forks N children that exec /bin/true, waits for each child's
 * pidfd to become readable, then reaps it with waitpid(WNOHANG), and
 * prints how often the child was not reapable yet (0 natively: a readable
 * pidfd means the child is a zombie its parent may reap). */
#define _GNU_SOURCE
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 200, late = 0;
	for (int i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid == 0) {
			execl("/bin/true", "true", (char *)0);
			_exit(127);
		}
		int fd = syscall(SYS_pidfd_open, pid, 0);
		struct pollfd p = {fd, POLLIN, 0};
		if (fd < 0 || poll(&p, 1, 10000) != 1) {
			printf("poll failed\n");
			return 1;
		}
		int st;
		if (waitpid(pid, &st, WNOHANG) == 0) {
			late++;
			waitpid(pid, &st, 0);
		}
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			printf("child %d: status %#x\n", i, st);
		close(fd);
	}
	printf("not reapable after the pidfd: %d of %d\n", late, n);
	return 0;
}
