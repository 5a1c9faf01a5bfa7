// execs: calls execve, execveat, fexecve, posix_spawn and vfork+exec
// directly, for the errors of linux-exec.md sections 1 and 3 and for the
// successful forms, and prints what it observes: return values, errno
// names, exit statuses of its children and what each child sees of its
// own start (argv, comm, AT_EXECFN). Run natively and under `uexec run`,
// the outputs must be equal.
//
// Usage: EXECS_DRIVER=1 execs DIR [CASE]   (DIR: a scratch directory of its own)
// Without EXECS_DRIVER in the environment it is the child: it prints its
// argv, comm and AT_EXECFN and exits 7.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;
static const char *self;
static char dir[4096];

static const char *ename(int e) {
	switch (e) {
	case 0: return "0";
	case ENOENT: return "ENOENT";
	case EACCES: return "EACCES";
	case ENOTDIR: return "ENOTDIR";
	case ELOOP: return "ELOOP";
	case ENAMETOOLONG: return "ENAMETOOLONG";
	case ENOEXEC: return "ENOEXEC";
	case E2BIG: return "E2BIG";
	case ETXTBSY: return "ETXTBSY";
	case EINVAL: return "EINVAL";
	case EBADF: return "EBADF";
	case EFAULT: return "EFAULT";
	case ELIBBAD: return "ELIBBAD";
	case EIO: return "EIO";
	}
	static char b[32];
	snprintf(b, sizeof b, "errno%d", e);
	return b;
}

static int show(int argc, char **argv) {
	char comm[64] = "";
	int fd = open("/proc/self/comm", O_RDONLY);
	if (fd >= 0) {
		int n = read(fd, comm, sizeof comm - 1);
		if (n > 0) comm[n - 1] = 0;
		close(fd);
	}
	const char *fn = (const char *)getauxval(AT_EXECFN);
	printf("  child argc=%d", argc);
	for (int i = 0; i < argc; i++) printf(" [%s]", argv[i]);
	printf(" comm=%s execfn=%s secure=%lu\n", comm, fn ? fn : "(null)", getauxval(AT_SECURE));
	fflush(stdout);
	return 7;
}

// run runs fn in a forked child: fn execs (or fails and reports errno).
static void run(const char *name, void (*fn)(void)) {
	printf("%s:\n", name);
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		errno = 0;
		fn();
		printf("  returned errno=%s\n", ename(errno));
		fflush(stdout);
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	if (WIFEXITED(st)) printf("  status exit %d\n", WEXITSTATUS(st));
	else printf("  status signal %d\n", WTERMSIG(st));
	fflush(stdout);
}

static char *p(const char *name) {
	static char b[8][4096];
	static int i;
	char *s = b[i++ % 8];
	snprintf(s, 4096, "%s/%s", dir, name);
	return s;
}

static char *showargv[] = {"show", "a", "b c", NULL};
static char *envp0[] = {"A=1", NULL};

static void c_enoent(void) { execve(p("missing"), showargv, envp0); }
static void c_empty(void) { execve("", showargv, envp0); }
static void c_dir(void) { execve(dir, showargv, envp0); }
static void c_noexec(void) { execve(p("plain"), showargv, envp0); }
static void c_notdir(void) { execve(p("plain/x"), showargv, envp0); }
static void c_trailing(void) { execve(p("self/"), showargv, envp0); }
static void c_loop(void) { execve(p("loop1"), showargv, envp0); }
static void c_longpath(void) {
	static char b[5000];
	memset(b, 'a', sizeof b - 1);
	b[0] = '/';
	execve(b, showargv, envp0);
}
static void c_longname(void) {
	static char b[600];
	snprintf(b, sizeof b, "%s/", dir);
	memset(b + strlen(b), 'n', 300);
	execve(b, showargv, envp0);
}
static void c_garbage(void) { execve(p("garbage"), showargv, envp0); }
static void c_badinterp(void) { execve(p("badinterp.sh"), showargv, envp0); }
static void c_bangonly(void) { execve(p("bang.sh"), showargv, envp0); }
static void c_nested(void) { execve(p("n6.sh"), showargv, envp0); }
static void c_nested5(void) { execve(p("n5.sh"), showargv, envp0); }
static void c_selfscript(void) { execve(p("selfref.sh"), showargv, envp0); }
static void c_e2big(void) {
	static char *big[40];
	static char s[131072];
	memset(s, 'x', sizeof s - 1);
	big[0] = "show";
	for (int i = 1; i < 39; i++) big[i] = s;
	execve(p("self"), big, envp0);
}
static void c_toolong(void) {
	static char s[131073];
	memset(s, 'x', sizeof s - 1);
	char *a[] = {"show", s, NULL};
	execve(p("self"), a, envp0);
}
static void c_e2big_missing(void) {
	static char *big[40];
	static char s[131072];
	memset(s, 'x', sizeof s - 1);
	big[0] = "show";
	for (int i = 1; i < 39; i++) big[i] = s;
	execve(p("missing"), big, envp0);
}
static void c_txtbsy(void) {
	int fd = open(p("busy"), O_WRONLY);
	execve(p("busy"), showargv, envp0);
	close(fd);
}
static void c_ok(void) { execve(p("self"), showargv, envp0); }
static void c_symlink(void) { execve(p("link"), showargv, envp0); }
static void c_script(void) { execve(p("ok.sh"), showargv, envp0); }
static void c_argc0(void) { char *a[] = {NULL}; execve(p("self"), a, envp0); }
static void c_nullargv(void) { execve(p("self"), NULL, envp0); }
static void c_efault_path(void) { execve((char *)8, showargv, envp0); }
static void c_efault_argv(void) { execve(p("self"), (char **)8, envp0); }
static void c_efault_argv_missing(void) { execve(p("missing"), (char **)8, envp0); }
static void c_efault_str(void) { char *a[] = {"show", (char *)8, NULL}; execve(p("self"), a, envp0); }
static void c_at_flags(void) { syscall(SYS_execveat, AT_FDCWD, p("self"), showargv, envp0, 0x8000); }
static void c_at_check(void) { syscall(SYS_execveat, AT_FDCWD, p("self"), showargv, envp0, 0x10000); }
static void c_at_flags_check(void) { syscall(SYS_execveat, AT_FDCWD, p("self"), showargv, envp0, 0x10000 | 0x8000); }
static void c_at_badfd(void) { syscall(SYS_execveat, 999, "self", showargv, envp0, 0); }
static void c_at_notdirfd(void) {
	int fd = open(p("plain"), O_RDONLY);
	syscall(SYS_execveat, fd, "self", showargv, envp0, 0);
}
static void c_at_rel(void) {
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	syscall(SYS_execveat, fd, "self", showargv, envp0, 0);
}
static void c_at_rel_missing(void) {
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	syscall(SYS_execveat, fd, "missing", showargv, envp0, 0);
}
static void c_at_abs(void) { syscall(SYS_execveat, 999, p("self"), showargv, envp0, 0); }
static void c_at_nofollow(void) { syscall(SYS_execveat, AT_FDCWD, p("link"), showargv, envp0, AT_SYMLINK_NOFOLLOW); }
static void c_at_nofollow_file(void) { syscall(SYS_execveat, AT_FDCWD, p("self"), showargv, envp0, AT_SYMLINK_NOFOLLOW); }
static void c_at_empty_nofd(void) { syscall(SYS_execveat, AT_FDCWD, "", showargv, envp0, AT_EMPTY_PATH); }
static void c_at_empty_noflag(void) {
	int fd = open(p("self"), O_RDONLY);
	syscall(SYS_execveat, fd, "", showargv, envp0, 0);
}
static void c_fexecve(void) {
	int fd = open(p("self"), O_RDONLY);
	fexecve(fd, showargv, envp0);
}
static void c_fexecve_path(void) {
	int fd = open(p("self"), O_PATH);
	syscall(SYS_execveat, fd, "", showargv, envp0, AT_EMPTY_PATH);
}
static void c_fexecve_dir(void) {
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	syscall(SYS_execveat, fd, "", showargv, envp0, AT_EMPTY_PATH);
}
static void c_fexecve_script_cloexec(void) {
	int fd = open(p("ok.sh"), O_RDONLY | O_CLOEXEC);
	syscall(SYS_execveat, fd, "", showargv, envp0, AT_EMPTY_PATH);
}
static void c_fexecve_script(void) {
	int fd = open(p("ok.sh"), O_RDONLY);
	syscall(SYS_execveat, fd, "", showargv, envp0, AT_EMPTY_PATH);
}
static void c_at_rel_script_cloexec(void) {
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	syscall(SYS_execveat, fd, "ok.sh", showargv, envp0, 0);
}
static void c_fexecve_opath_symlink(void) {
	int fd = open(p("link"), O_PATH | O_NOFOLLOW);
	syscall(SYS_execveat, fd, "", showargv, envp0, AT_EMPTY_PATH);
}
static void c_procfd_opath_symlink(void) {
	char name[64];
	snprintf(name, sizeof name, "/proc/self/fd/%d", open(p("link"), O_PATH | O_NOFOLLOW));
	execve(name, showargv, envp0);
}
static void c_at_rel_symlink(void) {
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	syscall(SYS_execveat, fd, "link", showargv, envp0, 0);
}
static void c_at_rel_script(void) {
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	syscall(SYS_execveat, fd, "ok.sh", showargv, envp0, 0);
}
static void c_procself(void) {
	char *a[] = {"show", "via", "/proc/self/exe", NULL};
	execve("/proc/self/exe", a, envp0);
}
static void c_posix_spawn(void) {
	pid_t pid;
	int e = posix_spawn(&pid, p("self"), NULL, NULL, showargv, envp0);
	if (e == 0) {
		int st;
		waitpid(pid, &st, 0);
		printf("  spawned status %d\n", WEXITSTATUS(st));
	}
	printf("  posix_spawn=%s\n", ename(e));
	fflush(stdout);
	e = posix_spawn(&pid, p("missing"), NULL, NULL, showargv, envp0);
	printf("  posix_spawn missing=%s\n", ename(e));
	e = posix_spawn(&pid, p("garbage"), NULL, NULL, showargv, envp0);
	printf("  posix_spawn garbage=%s\n", ename(e));
	fflush(stdout);
	_exit(0);
}
static void c_vfork(void) {
	for (int i = 0; i < 2; i++) {
		volatile int err = 0;
		pid_t pid = vfork();
		if (pid == 0) {
			execve(i == 0 ? p("self") : p("plain"), showargv, envp0);
			err = errno;
			_exit(100);
		}
		int st;
		waitpid(pid, &st, 0);
		printf("  vfork %d: status %d err=%s\n", i, WEXITSTATUS(st), ename(err));
		fflush(stdout);
	}
	_exit(0);
}
static void *thread_exec(void *arg) {
	char *a[] = {"show", "from-thread", NULL};
	execve(p("self"), a, envp0);
	return NULL;
}
static void *spin(void *arg) {
	for (;;) pause();
	return NULL;
}
static void c_thread(void) {
	pthread_t t1, t2;
	pthread_create(&t1, NULL, spin, NULL);
	pthread_create(&t2, NULL, thread_exec, NULL);
	pthread_join(t2, NULL);
}

static void mk(const char *name, const char *content, int mode) {
	int fd = open(p(name), O_WRONLY | O_CREAT | O_TRUNC, mode);
	if (fd < 0) { perror(name); exit(2); }
	write(fd, content, strlen(content));
	close(fd);
	chmod(p(name), mode);
}

int main(int argc, char **argv) {
	if (argc == 0 || argv[0] == NULL) {
		char *a[] = {"(argc0)"};
		return show(0, a);
	}
	// The children get an environment without EXECS_DRIVER.
	if (getenv("EXECS_DRIVER") == NULL) return show(argc, argv);
	if (argc < 2) { fprintf(stderr, "usage: EXECS_DRIVER=1 execs DIR [CASE]\n"); return 2; }
	self = argv[0];
	snprintf(dir, sizeof dir, "%s", argv[1]);
	char buf[8192];
	int in = open("/proc/self/exe", O_RDONLY);
	int out = open(p("self"), O_WRONLY | O_CREAT | O_TRUNC, 0755);
	int n;
	while ((n = read(in, buf, sizeof buf)) > 0) write(out, buf, n);
	close(in);
	close(out);
	mk("plain", "data\n", 0644);
	mk("garbage", "\x01\x02garbage garbage\n", 0755);
	mk("busy", "#!/bin/sh\n", 0755);
	mk("badinterp.sh", "#!/nonexistent/interp\n", 0755);
	mk("bang.sh", "#!", 0755);
	char s[8192];
	snprintf(s, sizeof s, "#!%s\n", p("self"));
	mk("ok.sh", s, 0755);
	mk("n0.sh", s, 0755);
	for (int i = 1; i <= 6; i++) {
		char name[16], prev[16];
		snprintf(name, sizeof name, "n%d.sh", i);
		snprintf(prev, sizeof prev, "n%d.sh", i - 1);
		snprintf(s, sizeof s, "#!%s\n", p(prev));
		mk(name, s, 0755);
	}
	snprintf(s, sizeof s, "#!%s\n", p("selfref.sh"));
	mk("selfref.sh", s, 0755);
	unlink(p("loop1")); unlink(p("loop2")); unlink(p("link"));
	symlink(p("loop2"), p("loop1"));
	symlink(p("loop1"), p("loop2"));
	symlink(p("self"), p("link"));

	struct { const char *name; void (*fn)(void); } cases[] = {
		{"enoent", c_enoent}, {"empty", c_empty}, {"dir", c_dir}, {"noexec", c_noexec},
		{"notdir", c_notdir}, {"trailing-slash", c_trailing}, {"eloop", c_loop}, {"long-path", c_longpath},
		{"long-name", c_longname}, {"garbage", c_garbage}, {"bad-interp", c_badinterp},
		{"bang-only", c_bangonly}, {"nested6", c_nested}, {"nested5", c_nested5}, {"self-script", c_selfscript},
		{"e2big", c_e2big}, {"string-too-long", c_toolong}, {"e2big-missing", c_e2big_missing},
		{"txtbsy", c_txtbsy}, {"ok", c_ok}, {"symlink", c_symlink}, {"script", c_script},
		{"argc0", c_argc0}, {"null-argv", c_nullargv}, {"efault-path", c_efault_path},
		{"efault-argv", c_efault_argv}, {"efault-argv-missing", c_efault_argv_missing},
		{"efault-string", c_efault_str},
		{"execveat-flags", c_at_flags}, {"execveat-flags-with-check", c_at_flags_check}, {"execveat-check", c_at_check}, {"execveat-badfd", c_at_badfd}, {"execveat-notdir-fd", c_at_notdirfd},
		{"execveat-relative", c_at_rel}, {"execveat-relative-missing", c_at_rel_missing},
		{"execveat-absolute", c_at_abs}, {"execveat-nofollow-link", c_at_nofollow},
		{"execveat-nofollow-file", c_at_nofollow_file}, {"execveat-empty-cwd", c_at_empty_nofd},
		{"execveat-empty-noflag", c_at_empty_noflag}, {"fexecve", c_fexecve}, {"fexecve-opath", c_fexecve_path},
		{"fexecve-dir", c_fexecve_dir}, {"fexecve-script-cloexec", c_fexecve_script_cloexec},
		{"fexecve-script", c_fexecve_script}, {"execveat-relative-script-cloexec", c_at_rel_script_cloexec},
		{"fexecve-opath-symlink", c_fexecve_opath_symlink}, {"proc-fd-opath-symlink", c_procfd_opath_symlink},
		{"execveat-relative-symlink", c_at_rel_symlink}, {"execveat-relative-script", c_at_rel_script},
		{"proc-self-exe", c_procself}, {"posix-spawn", c_posix_spawn}, {"vfork", c_vfork},
		{"thread-exec", c_thread},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		if (argc > 2 && strcmp(argv[2], cases[i].name) != 0) continue;
		run(cases[i].name, cases[i].fn);
	}
	return 0;
}
