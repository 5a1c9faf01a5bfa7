// launch runs one exec of the binfmt_misc tests and prints its errno when
// it fails. With -b it is also the kernel's side of them: in a user and
// mount namespace its caller made, it mounts binfmt_misc and registers the
// rules it is given, so that the exec after that is the kernel's
// binfmt_misc at work. Under `uexec run` it is given no -b and no -r: the
// same exec is then uexec's.
//
//	launch [-b] [-r RULE]... [-R] [-U PATH] [-d DIR] [-u UID:GID] [-N]
//	       [-m path|fd|cloexec-fd] -- PATH ARGV0 [ARG]...
//
// -b mounts binfmt_misc on /proc/sys/fs/binfmt_misc (in a namespace the
// caller made). -r registers a rule, in the order given (newest last).
// -R registers every rule and prints "register N ok|ERRNO" for each, then
// exits without an exec. -U unlinks PATH, -d changes directory and -u
// drops to the ids, and -N sets no_new_privs, in this order, after the
// rules are registered.
// -m fd opens PATH and execs it with execveat(fd, "", AT_EMPTY_PATH);
// cloexec-fd does the same with an O_CLOEXEC descriptor.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <linux/close_range.h>
#include <unistd.h>

extern char **environ;

// mountbinfmt gives the namespace the test made for it (a user and mount
// namespace whose ids map to themselves, see binfmt_kernel_test.go) a
// binfmt_misc instance of its own.
static void mountbinfmt(void) {
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("binfmt_misc", "/proc/sys/fs/binfmt_misc", "binfmt_misc", 0, NULL) < 0) {
		printf("launch: mount binfmt_misc: %s\n", strerrorname_np(errno));
		exit(125);
	}
}

// reg writes one rule to register and returns 0 or the errno.
static int reg(const char *rule) {
	int fd = open("/proc/sys/fs/binfmt_misc/register", O_WRONLY);
	if (fd < 0)
		return errno;
	ssize_t n = write(fd, rule, strlen(rule));
	int e = n < 0 ? errno : 0;
	close(fd);
	return e;
}

int main(int argc, char **argv) {
	const char *unl = NULL, *dir = NULL, *ids = NULL, *mode = "path";
	const char *rules[64];
	int nrules = 0, report = 0, mnt = 0, nnp = 0, opt;
	// Only the descriptors a test gives it: none the test inherited.
	close_range(3, ~0U, 0);
	while ((opt = getopt(argc, argv, "+br:RU:d:u:Nm:")) != -1) {
		switch (opt) {
		case 'b': mnt = 1; break;
		case 'r': rules[nrules++ % 64] = optarg; break;
		case 'R': report = 1; break;
		case 'U': unl = optarg; break;
		case 'd': dir = optarg; break;
		case 'u': ids = optarg; break;
		case 'N': nnp = 1; break;
		case 'm': mode = optarg; break;
		default: return 125;
		}
	}
	if (mnt)
		mountbinfmt();
	for (int i = 0; i < nrules; i++) {
		int e = reg(rules[i]);
		if (report) {
			printf("register %d %s\n", i, e ? strerrorname_np(e) : "ok");
		} else if (e) {
			printf("launch: register %s: %s\n", rules[i], strerrorname_np(e));
			return 125;
		}
	}
	if (report)
		return 0;
	if (optind + 2 > argc) {
		fprintf(stderr, "launch: want PATH ARGV0 [ARG]...\n");
		return 125;
	}
	if (unl && unlink(unl) < 0) {
		printf("launch: unlink %s: %s\n", unl, strerrorname_np(errno));
		return 125;
	}
	if (dir && chdir(dir) < 0) {
		printf("launch: chdir %s: %s\n", dir, strerrorname_np(errno));
		return 125;
	}
	if (ids) {
		unsigned u, g;
		if (sscanf(ids, "%u:%u", &u, &g) != 2)
			return 125;
		if (setgroups(0, NULL) < 0 && errno != EPERM) {
			printf("launch: setgroups: %s\n", strerrorname_np(errno));
			return 125;
		}
		if (setresgid(g, g, g) < 0 || setresuid(u, u, u) < 0) {
			printf("launch: set ids: %s\n", strerrorname_np(errno));
			return 125;
		}
	}
	if (nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		printf("launch: no_new_privs: %s\n", strerrorname_np(errno));
		return 125;
	}
	char *path = argv[optind];
	char **args = argv + optind + 1;
	fflush(stdout);
	if (strcmp(mode, "path") == 0) {
		execve(path, args, environ);
	} else if (strcmp(mode, "fd") == 0 || strcmp(mode, "cloexec-fd") == 0) {
		int fd = open(path, O_RDONLY | (mode[0] == 'c' ? O_CLOEXEC : 0));
		if (fd < 0) {
			printf("launch: open %s: %s\n", path, strerrorname_np(errno));
			return 125;
		}
		syscall(SYS_execveat, fd, "", args, environ, AT_EMPTY_PATH);
	} else {
		fprintf(stderr, "launch: unknown mode %s\n", mode);
		return 125;
	}
	printf("exec %s\n", strerrorname_np(errno));
	return 127;
}
