/* crashchild: forks a grandchild of its caller that dies of SIGSEGV.
 * It prints the grandchild's pid, then "zombie" once the grandchild is a
 * zombie (waitid WNOWAIT), and reaps it only when descriptor 3 reaches
 * end of file: the caller (exitinfo_test.go) looks at the grandchild's
 * pidfd before and after the reap. The grandchild faults when its standard
 * input reaches end of file. Exit status 0: the grandchild died of SIGSEGV. */
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
	char c;
	pid_t pid = fork();
	if (pid < 0)
		return 2;
	if (pid == 0) {
		while (read(0, &c, 1) > 0)
			;
		*(volatile int *)0 = 0;
		return 3;
	}
	printf("%d\n", (int)pid);
	fflush(stdout);
	siginfo_t si;
	if (waitid(P_PID, pid, &si, WEXITED | WNOWAIT) != 0)
		return 4;
	printf("zombie\n");
	fflush(stdout);
	while (read(3, &c, 1) > 0)
		;
	int ws;
	if (waitpid(pid, &ws, 0) != pid)
		return 5;
	return WIFSIGNALED(ws) && WTERMSIG(ws) == SIGSEGV ? 0 : 6;
}
