// bench/notifyloop.c: the floor of a tree served by seccomp user
// notification. It runs CMD under a filter that sends execve and execveat
// to this process (notify) or allows everything (allow), and answers every
// notification CONTINUE at once, as uexec's tree does an exec the kernel
// makes. Environment knobs for its serving thread, as the README's
// Benchmarks compare them: NICE=N (setpriority), SLICE=NS (sched_setattr's
// custom slice), FIFO=1 (SCHED_FIFO 1), NOSYNC=1 (no
// SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP).
//
//	gcc -O2 -o /tmp/notifyloop bench/notifyloop.c
//	/tmp/notifyloop notify sh -c 'i=0; while [ $i -lt 300 ]; do /bin/true; i=$((i+1)); done'
#define _GNU_SOURCE
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP 1
#endif

struct sched_attr_ {
	unsigned int size, sched_policy;
	unsigned long long sched_flags;
	int sched_nice;
	unsigned int sched_priority;
	unsigned long long sched_runtime, sched_deadline, sched_period;
	unsigned int util_min, util_max;
};

static void sendfd(int s, int fd) {
	char c = 0, buf[CMSG_SPACE(sizeof fd)];
	struct iovec io = {&c, 1};
	struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = buf, .msg_controllen = sizeof buf};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
	cm->cmsg_level = SOL_SOCKET, cm->cmsg_type = SCM_RIGHTS, cm->cmsg_len = CMSG_LEN(sizeof fd);
	memcpy(CMSG_DATA(cm), &fd, sizeof fd);
	if (sendmsg(s, &m, 0) < 0) perror("sendmsg"), _exit(1);
}

static int recvfd(int s) {
	char c, buf[CMSG_SPACE(sizeof(int))];
	struct iovec io = {&c, 1};
	struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = buf, .msg_controllen = sizeof buf};
	int fd;
	if (recvmsg(s, &m, 0) <= 0) perror("recvmsg"), exit(1);
	memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof fd);
	return fd;
}

int main(int argc, char **argv) {
	if (argc < 3 || (strcmp(argv[1], "notify") && strcmp(argv[1], "allow"))) {
		fprintf(stderr, "usage: notifyloop notify|allow CMD [ARG]...\n");
		return 2;
	}
	int notify = !strcmp(argv[1], "notify"), sp[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp)) perror("socketpair"), exit(1);
	pid_t pid = fork();
	if (pid == 0) {
		struct sock_filter f[] = {
			BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_execve, 2, 0),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_execveat, 1, 0),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
			BPF_STMT(BPF_RET | BPF_K, notify ? SECCOMP_RET_USER_NOTIF : SECCOMP_RET_ALLOW),
		};
		struct sock_fprog p = {sizeof f / sizeof f[0], f};
		prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
		int fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, notify ? SECCOMP_FILTER_FLAG_NEW_LISTENER : 0, &p);
		if (fd < 0) perror("seccomp"), _exit(1);
		if (notify) sendfd(sp[1], fd), close(fd);
		close(sp[0]), close(sp[1]);
		execvp(argv[2], argv + 2);
		perror(argv[2]);
		_exit(127);
	}
	close(sp[1]);
	int st;
	if (!notify) {
		waitpid(pid, &st, 0);
		return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	}
	int l = recvfd(sp[0]);
	if (!getenv("NOSYNC")) ioctl(l, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP, 0);
	if (getenv("NICE") && setpriority(PRIO_PROCESS, 0, atoi(getenv("NICE")))) perror("setpriority");
	if (getenv("SLICE")) {
		struct sched_attr_ a = {.size = sizeof a, .sched_runtime = strtoull(getenv("SLICE"), 0, 10)};
		a.sched_nice = getpriority(PRIO_PROCESS, 0);
		if (syscall(SYS_sched_setattr, 0, &a, 0)) perror("sched_setattr");
	}
	if (getenv("FIFO")) {
		struct sched_param sp1 = {.sched_priority = 1};
		if (sched_setscheduler(0, SCHED_FIFO, &sp1)) perror("SCHED_FIFO");
	}
	struct seccomp_notif n;
	struct seccomp_notif_resp r;
	for (;;) {
		struct pollfd pf = {l, POLLIN, 0};
		if (poll(&pf, 1, -1) < 0) continue;
		if (pf.revents & (POLLHUP | POLLERR)) break;
		memset(&n, 0, sizeof n);
		if (ioctl(l, SECCOMP_IOCTL_NOTIF_RECV, &n) < 0) continue;
		memset(&r, 0, sizeof r);
		r.id = n.id, r.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
		ioctl(l, SECCOMP_IOCTL_NOTIF_SEND, &r);
	}
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
