// jobctl: job control inside a process tree. A child counts in a file; the
// parent stops it with a stop signal, checks that waitpid(WUNTRACED)
// reports the stop and that the counter does not move while stopped, then
// continues it with SIGCONT and checks waitpid(WCONTINUED) and that the
// counter moves again.
// Output is the same for every run; the status says whether all held.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void nap(long ms) {
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
	}
}

static unsigned long readc(int fd) {
	unsigned long v = 0;
	if (pread(fd, &v, sizeof v, 0) != sizeof v)
		return 0;
	return v;
}

static int round_(int fd, int sig) {
	int bad = 0, st;
	// The counter starts again at 0, so that the stop below comes once
	// the child has its own process group: sent before, to a child still
	// in this process's group, SIGTSTP would be discarded wherever that
	// group is orphaned (the test run by a shell that has gone).
	unsigned long zero = 0;
	pwrite(fd, &zero, sizeof zero, 0);
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(2);
	}
	if (pid == 0) {
		// A process group of its own, whose parent is in another group
		// of the session: not orphaned, so SIGTSTP is not discarded.
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL); // never outlive the test
		for (unsigned long i = 1;; i++) {
			pwrite(fd, &i, sizeof i, 0);
			nap(2);
		}
	}
	while (readc(fd) < 3)
		nap(1);
	kill(pid, sig);
	pid_t w = waitpid(pid, &st, WUNTRACED);
	printf("%s: waitpid(WUNTRACED) %s, stopped %d, by %s\n", strsignal(sig), w == pid ? "ok" : "failed",
	       WIFSTOPPED(st), WIFSTOPPED(st) ? strsignal(WSTOPSIG(st)) : "-");
	bad |= !(w == pid && WIFSTOPPED(st) && WSTOPSIG(st) == sig);
	nap(20); // the stop has taken every thread before waitpid reports it
	unsigned long a = readc(fd);
	nap(200);
	unsigned long b = readc(fd);
	printf("%s: counter still while stopped: %s\n", strsignal(sig), a == b ? "yes" : "no");
	bad |= a != b;
	st = 0;
	w = waitpid(pid, &st, WNOHANG | WUNTRACED | WCONTINUED);
	printf("%s: no other state change while stopped: %s\n", strsignal(sig), w == 0 ? "yes" : "no");
	bad |= w != 0;
	kill(pid, SIGCONT);
	w = waitpid(pid, &st, WCONTINUED);
	printf("%s: waitpid(WCONTINUED) %s, continued %d\n", strsignal(sig), w == pid ? "ok" : "failed", WIFCONTINUED(st));
	bad |= !(w == pid && WIFCONTINUED(st));
	unsigned long c = readc(fd);
	int moved = 0;
	for (int i = 0; i < 500 && !moved; i++) {
		nap(2);
		moved = readc(fd) > c;
	}
	printf("%s: counter moves after SIGCONT: %s\n", strsignal(sig), moved ? "yes" : "no");
	bad |= !moved;
	kill(pid, SIGKILL);
	w = waitpid(pid, &st, 0);
	printf("%s: killed: %d\n", strsignal(sig), w == pid && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	return bad;
}

int main(int argc, char **argv) {
	if (argc < 2) {
		fprintf(stderr, "usage: jobctl FILE\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	// No wait may hang: a stop or continue that never comes is a failure
	// (SIGALRM), and the counting child goes with its process group.
	alarm(20);

	int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0) {
		perror(argv[1]);
		return 2;
	}
	int bad = 0;
	bad |= round_(fd, SIGSTOP);
	bad |= round_(fd, SIGTSTP);
	printf("%s\n", bad ? "FAIL" : "ok");
	return bad;
}
