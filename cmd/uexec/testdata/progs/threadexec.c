/* threadexec: "thread PROG ARGS...": a second thread execs PROG (the
 * process then keeps the main thread's pid); "fd PROG ARGS...":
 * execveat(fd, "", AT_EMPTY_PATH) of PROG opened read-only. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;
static char **args;

static void *run(void *unused) {
	(void)unused;
	execv(args[0], args);
	perror("execv");
	_exit(127);
}

int main(int argc, char **argv) {
	if (argc < 3)
		return 2;
	args = argv + 2;
	if (strcmp(argv[1], "thread") == 0) {
		pthread_t t;
		pthread_create(&t, NULL, run, NULL);
		pthread_join(t, NULL);
		return 1;
	}
	int fd = open(args[0], O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		perror("open");
		return 1;
	}
	syscall(SYS_execveat, fd, "", args, environ, AT_EMPTY_PATH);
	perror("execveat");
	return 127;
}
