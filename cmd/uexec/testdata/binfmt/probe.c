// probe is the interpreter of the binfmt_misc tests: it prints, one fact a
// line, everything an interpreter observes of how it was started, and
// nothing that changes from run to run (no addresses, no pids).
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <unistd.h>

#ifndef AT_EXECFD
#define AT_EXECFD 2
#endif

// auxv reads the whole auxiliary vector: getauxval cannot tell an absent
// AT_EXECFD from descriptor 0.
static int auxv(unsigned long type, unsigned long *val) {
	FILE *f = fopen("/proc/self/auxv", "r");
	unsigned long a[2];
	int found = 0;
	if (!f)
		return -1;
	while (fread(a, sizeof a, 1, f) == 1 && a[0] != 0)
		if (a[0] == type) {
			*val = a[1];
			found = 1;
		}
	fclose(f);
	return found;
}

static void showlink(const char *what, const char *path) {
	char buf[4096];
	ssize_t n = readlink(path, buf, sizeof buf - 1);
	if (n < 0) {
		printf("%s (unreadable)\n", what);
		return;
	}
	buf[n] = 0;
	printf("%s %s\n", what, buf);
}

int main(int argc, char **argv) {
	printf("argc %d\n", argc);
	for (int i = 0; i < argc; i++)
		printf("argv[%d] %s\n", i, argv[i]);
	const char *fn = (const char *)getauxval(AT_EXECFN);
	printf("AT_EXECFN %s\n", fn ? fn : "(none)");
	unsigned long fd;
	int has = auxv(AT_EXECFD, &fd);
	if (has <= 0) {
		printf("AT_EXECFD absent\n");
	} else {
		char p[64];
		unsigned char head[4] = {0};
		printf("AT_EXECFD %lu\n", fd);
		snprintf(p, sizeof p, "/proc/self/fd/%lu", fd);
		showlink("AT_EXECFD ->", p);
		int fdfl = fcntl((int)fd, F_GETFD), fl = fcntl((int)fd, F_GETFL);
		printf("AT_EXECFD cloexec %d accmode %d\n", fdfl < 0 ? -1 : (fdfl & FD_CLOEXEC),
		       fl < 0 ? -1 : (fl & (O_ACCMODE | O_PATH)));
		ssize_t n = pread((int)fd, head, sizeof head, 0);
		printf("AT_EXECFD head %zd %02x%02x%02x%02x\n", n, head[0], head[1], head[2], head[3]);
	}
	printf("AT_FLAGS %lu\n", getauxval(AT_FLAGS));
	printf("AT_SECURE %lu\n", getauxval(AT_SECURE));
	printf("AT_UID %lu AT_EUID %lu AT_GID %lu AT_EGID %lu\n", getauxval(AT_UID), getauxval(AT_EUID),
	       getauxval(AT_GID), getauxval(AT_EGID));
	uid_t r, e, s;
	gid_t gr, ge, gs;
	getresuid(&r, &e, &s);
	getresgid(&gr, &ge, &gs);
	printf("uid %u euid %u suid %u\n", r, e, s);
	printf("gid %u egid %u sgid %u\n", gr, ge, gs);
	showlink("exe", "/proc/self/exe");
	char comm[64] = "";
	FILE *c = fopen("/proc/self/comm", "r");
	if (c) {
		if (!fgets(comm, sizeof comm, c))
			comm[0] = 0;
		fclose(c);
	}
	comm[strcspn(comm, "\n")] = 0;
	printf("comm %s\n", comm);
	printf("dumpable %d\n", prctl(PR_GET_DUMPABLE));
	// Open descriptors, without the one that lists them.
	DIR *d = opendir("/proc/self/fd");
	printf("fds");
	if (d) {
		int self = dirfd(d);
		struct dirent *de;
		int fds[256], n = 0;
		while ((de = readdir(d)) && n < 256) {
			if (de->d_name[0] == '.')
				continue;
			int f = atoi(de->d_name);
			if (f != self)
				fds[n++] = f;
		}
		closedir(d);
		for (int i = 0; i < n; i++)
			for (int j = i + 1; j < n; j++)
				if (fds[j] < fds[i]) {
					int x = fds[i];
					fds[i] = fds[j];
					fds[j] = x;
				}
		for (int i = 0; i < n; i++)
			printf(" %d", fds[i]);
	}
	printf("\n");
	return 0;
}
