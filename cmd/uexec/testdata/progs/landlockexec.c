/* landlockexec DIR[:DIR]... PROGRAM [ARG]...: runs PROGRAM under a Landlock
 * ruleset that allows executing only files beneath the DIRs ("-": none; a
 * sandbox). uexec's stub lives elsewhere, so an exec of the stub is refused
 * (EACCES) and the kernel's exec of the program must be used instead.
 *
 * The execve(2) is made from a syscall instruction of its own, with every
 * register set to a known value; if it fails, landlockexec prints its
 * result, the registers it left and the descriptors open. The kernel's
 * refusal (EACCES) keeps every register but rax, rcx (the return address)
 * and r11 (rflags): under uexec the caller must see the same, to the
 * register, and have no descriptor of uexec's, nor the program it runs.
 * Without arguments it prints its descriptors. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <linux/landlock.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

unsigned long out[17];

static const char *const names[] = {"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8", "r9",
				    "r10", "r11", "r12", "r13", "r14", "r15", "rflags"};

static void descriptors(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	printf("descriptors:");
	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.' && atoi(e->d_name) != dirfd(d))
			printf(" %s", e->d_name);
	printf("\n");
}

int main(int argc, char **argv)
{
	if (argc == 1) {
		descriptors();
		return 0;
	}
	if (argc < 3) {
		fprintf(stderr, "usage: landlockexec DIR[:DIR]... PROGRAM [ARG]...\n");
		return 2;
	}
	const char *prog = argv[2];
	struct landlock_ruleset_attr attr = {.handled_access_fs = LANDLOCK_ACCESS_FS_EXECUTE};
	int rs = syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
	if (rs < 0) {
		perror("landlock_create_ruleset");
		return 1;
	}
	for (char *dir = strtok(argv[1], ":"); dir && strcmp(dir, "-") != 0; dir = strtok(NULL, ":")) {
		struct landlock_path_beneath_attr pb = {.allowed_access = LANDLOCK_ACCESS_FS_EXECUTE};
		pb.parent_fd = open(dir, O_PATH | O_CLOEXEC);
		if (pb.parent_fd < 0 || syscall(SYS_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) < 0) {
			perror(dir);
			return 1;
		}
		close(pb.parent_fd);
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || syscall(SYS_landlock_restrict_self, rs, 0) < 0) {
		perror("landlock_restrict_self");
		return 1;
	}
	close(rs);
	const char *path = prog;
	char **argp = argv + 2;
	char **envp = environ;
	__asm__ volatile(
		"sub $128, %%rsp\n\t" /* the red zone */
		"push %%rbx\n\tpush %%rbp\n\tpush %%r12\n\tpush %%r13\n\tpush %%r14\n\tpush %%r15\n\t"
		"xor %%eax, %%eax\n\t" /* rflags: ZF and PF, not what came before */
		"mov $0x0b0b0b0b0b0b0b0b, %%rbx\n\t"
		"mov $0x0505050505050505, %%rbp\n\t"
		"mov $0x0808080808080808, %%r8\n\t"
		"mov $0x0909090909090909, %%r9\n\t"
		"mov $0x1010101010101010, %%r10\n\t"
		"mov $0x1111111111111111, %%r11\n\t"
		"mov $0x1212121212121212, %%r12\n\t"
		"mov $0x1313131313131313, %%r13\n\t"
		"mov $0x1414141414141414, %%r14\n\t"
		"mov $0x1515151515151515, %%r15\n\t"
		"mov $0x0c0c0c0c0c0c0c0c, %%rcx\n\t"
		"mov $59, %%eax\n\t" /* execve */
		"syscall\n"
		"1:\n\t"
		"mov %%rax, out+0(%%rip)\n\t"
		"mov %%rbx, out+8(%%rip)\n\t"
		"mov %%rcx, out+16(%%rip)\n\t"
		"mov %%rdx, out+24(%%rip)\n\t"
		"mov %%rsi, out+32(%%rip)\n\t"
		"mov %%rdi, out+40(%%rip)\n\t"
		"mov %%rbp, out+48(%%rip)\n\t"
		"mov %%r8, out+56(%%rip)\n\t"
		"mov %%r9, out+64(%%rip)\n\t"
		"mov %%r10, out+72(%%rip)\n\t"
		"mov %%r11, out+80(%%rip)\n\t"
		"mov %%r12, out+88(%%rip)\n\t"
		"mov %%r13, out+96(%%rip)\n\t"
		"mov %%r14, out+104(%%rip)\n\t"
		"mov %%r15, out+112(%%rip)\n\t"
		"pushfq\n\tpop %%rax\n\tmov %%rax, out+120(%%rip)\n\t"
		"lea 1b(%%rip), %%rax\n\tmov %%rax, out+128(%%rip)\n\t"
		"pop %%r15\n\tpop %%r14\n\tpop %%r13\n\tpop %%r12\n\tpop %%rbp\n\tpop %%rbx\n\t"
		"add $128, %%rsp\n\t"
		: "+D"(path), "+S"(argp), "+d"(envp)
		:
		: "rax", "rcx", "r8", "r9", "r10", "r11", "memory", "cc");
	printf("execve: %ld\n", (long)out[0]);
	for (int i = 1; i < 16; i++) {
		if (i == 2) /* the return address: the program is position-independent */
			printf("rcx: %s\n", out[2] == out[16] ? "the return address" : "other");
		else if (i >= 3 && i <= 5) /* rdx, rsi, rdi */
			printf("%s: %s\n", names[i],
			       out[i] == (unsigned long[]){(unsigned long)environ, (unsigned long)(argv + 2), (unsigned long)prog}[i - 3]
				       ? "the argument"
				       : "other");
		else
			printf("%s: %#lx\n", names[i], out[i]);
	}
	descriptors();
	return 0;
}
