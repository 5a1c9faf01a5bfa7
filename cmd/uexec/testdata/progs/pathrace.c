/* pathrace A B N: execs the path in a buffer that a second thread keeps
 * rewriting between A and B (of equal length) while execve is pending,
 * N times in forked children; each child's program prints which file it
 * is and the name it was exec'd by. The program run must always be the
 * file its own AT_EXECFN and argv name (whatever the buffer held when
 * each reader looked). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char buf[4096];
static const char *a, *b;

static void *flip(void *arg)
{
	(void)arg;
	for (;;) {
		memcpy(buf, a, strlen(a));
		memcpy(buf, b, strlen(b));
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int n, i;
	if (argc != 4 || strlen(argv[1]) != strlen(argv[2]))
		return 2;
	a = argv[1], b = argv[2], n = atoi(argv[3]);
	for (i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid == 0) {
			pthread_t t;
			char *args[] = {buf, NULL};
			strcpy(buf, a);
			pthread_create(&t, NULL, flip, NULL);
			execv(buf, args);
			_exit(127);
		}
		int st;
		waitpid(pid, &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			printf("child %d: status %#x\n", i, st);
		fflush(stdout);
	}
	return 0;
}
