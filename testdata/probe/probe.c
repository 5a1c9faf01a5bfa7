/*
 * probe: reports what a freshly exec'd program observes, for differential
 * tests that run it natively and under uexec and compare the output line by
 * line (internal/kernelexec: BuildProbe, RunProbe, ParseProbe, DiffProbe).
 *
 * Build with its own entry point so that the registers are captured before
 * any libc code runs:
 *
 *	gcc -O2 -Wl,-e,probe_entry probe.c                 (dynamic PIE)
 *	gcc -O2 -fno-pie -no-pie -Wl,-e,probe_entry ...    (dynamic, ET_EXEC)
 *	gcc -O2 -static -Wl,-e,probe_entry ...             (static, ET_EXEC)
 *	gcc -O2 -static-pie -Wl,-e,probe_entry ...         (static-pie)
 *
 * Output: one "key=value" line per fact, keys unique, values escaped (bytes
 * outside 0x20..0x7e and the backslash become \xNN and \\). With ASLR off
 * and the same argv, envp, cwd and binary, two runs differ only in the keys
 * pid, ppid and at_random.bytes.
 *
 * What "entry" means: probe_entry is the ELF entry (AT_ENTRY). In a static
 * program the kernel jumps there, so entry.* are the kernel's registers. In a
 * dynamic program the kernel starts ld.so; ld.so jumps to probe_entry after
 * relocating, so entry.* are ld.so's hand-off (rdx = _dl_fini, fs_base set
 * to the TLS block): the kernel's registers at ld.so's entry are visible only
 * to a tracer (kernelexec.Snapshot). The instruction pointer at entry is not
 * observable from inside except as the address of probe_entry.
 *
 * Not observable from inside: the FPU/SSE registers other than the control
 * words; the vector registers (the saving code itself uses none, but they
 * are not reported); rseq state before libc registered its own area (only
 * the area libc registered, and whether re-registering it says EBUSY).
 * PROBE_MAPS=1 in the environment adds every /proc/self/maps line.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/auxv.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#ifndef PROBE_MODE
#define PROBE_MODE "unknown"
#endif

/* Slots of probe_saved, filled by probe_entry (offsets = index * 8). */
enum {
	S_RAX, S_RBX, S_RCX, S_RDX, S_RSI, S_RDI, S_RBP, S_RSP,
	S_R8, S_R9, S_R10, S_R11, S_R12, S_R13, S_R14, S_R15,
	S_RFLAGS, S_FSBASE, S_GSBASE, S_FSERR, S_GSERR, S_MXCSR, S_FCW,
	S_N
};
static const char *const slot_names[S_N] = {
	"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
	"r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
	"rflags", "fs_base", "gs_base", "fs_base_ret", "gs_base_ret", "mxcsr", "fcw",
};

unsigned long probe_saved[S_N] __attribute__((used, aligned(16)));

/*
 * probe_entry saves every general register, rflags and rsp with moves (no
 * flag changes), asks the kernel for the fs and gs bases (arch_prctl
 * ARCH_GET_FS/ARCH_GET_GS: nothing else runs before, so these are the
 * values the program was started with), stores the SSE and x87 control
 * words, restores rflags and the registers the syscalls clobbered, and
 * jumps to the C library's _start with every register as it was received
 * (rdx, the exit hook _start passes on, included).
 */
__asm__(
	".text\n"
	".globl probe_entry\n"
	".type probe_entry,@function\n"
	"probe_entry:\n"
	"	mov %rax, probe_saved+0(%rip)\n"
	"	mov %rbx, probe_saved+8(%rip)\n"
	"	mov %rcx, probe_saved+16(%rip)\n"
	"	mov %rdx, probe_saved+24(%rip)\n"
	"	mov %rsi, probe_saved+32(%rip)\n"
	"	mov %rdi, probe_saved+40(%rip)\n"
	"	mov %rbp, probe_saved+48(%rip)\n"
	"	mov %rsp, probe_saved+56(%rip)\n"
	"	mov %r8, probe_saved+64(%rip)\n"
	"	mov %r9, probe_saved+72(%rip)\n"
	"	mov %r10, probe_saved+80(%rip)\n"
	"	mov %r11, probe_saved+88(%rip)\n"
	"	mov %r12, probe_saved+96(%rip)\n"
	"	mov %r13, probe_saved+104(%rip)\n"
	"	mov %r14, probe_saved+112(%rip)\n"
	"	mov %r15, probe_saved+120(%rip)\n"
	"	pushfq\n"
	"	pop %rax\n"
	"	mov %rax, probe_saved+128(%rip)\n"
	"	stmxcsr probe_saved+168(%rip)\n"
	"	fnstcw probe_saved+176(%rip)\n"
	"	mov $158, %eax\n"                 /* arch_prctl */
	"	mov $0x1003, %edi\n"              /* ARCH_GET_FS */
	"	lea probe_saved+136(%rip), %rsi\n"
	"	syscall\n"
	"	mov %rax, probe_saved+152(%rip)\n"
	"	mov $158, %eax\n"
	"	mov $0x1004, %edi\n"              /* ARCH_GET_GS */
	"	lea probe_saved+144(%rip), %rsi\n"
	"	syscall\n"
	"	mov %rax, probe_saved+160(%rip)\n"
	"	push probe_saved+128(%rip)\n"
	"	popfq\n"
	"	mov probe_saved+0(%rip), %rax\n"
	"	mov probe_saved+16(%rip), %rcx\n"
	"	mov probe_saved+32(%rip), %rsi\n"
	"	mov probe_saved+40(%rip), %rdi\n"
	"	mov probe_saved+88(%rip), %r11\n"
	"	jmp _start\n"
	".size probe_entry, .-probe_entry\n");

void probe_entry(void);

/* glibc 2.35+: the area it registered with rseq (weak: older libcs lack it). */
extern const unsigned int __rseq_size __attribute__((weak));
extern const ptrdiff_t __rseq_offset __attribute__((weak));

static void esc(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = p[i];
		if (c == '\\')
			fputs("\\\\", stdout);
		else if (c >= 0x20 && c <= 0x7e)
			putchar(c);
		else
			printf("\\x%02x", c);
	}
}

static void kv(const char *key, const char *val)
{
	printf("%s=", key);
	esc((const unsigned char *)val, strlen(val));
	putchar('\n');
}

static void kvb(const char *key, const void *val, size_t n)
{
	printf("%s=", key);
	esc(val, n);
	putchar('\n');
}

static void kx(const char *key, unsigned long v) { printf("%s=0x%lx\n", key, v); }
static void kd(const char *key, long v) { printf("%s=%ld\n", key, v); }

static const char *errname(int e)
{
	switch (e) {
	case 0: return "0";
	case EBUSY: return "EBUSY";
	case EINVAL: return "EINVAL";
	case EPERM: return "EPERM";
	case ENOSYS: return "ENOSYS";
	case EFAULT: return "EFAULT";
	}
	static char buf[32];
	snprintf(buf, sizeof buf, "errno%d", e);
	return buf;
}

static const char *auxname(unsigned long t)
{
	switch (t) {
	case AT_NULL: return "AT_NULL";
	case AT_IGNORE: return "AT_IGNORE";
	case AT_EXECFD: return "AT_EXECFD";
	case AT_PHDR: return "AT_PHDR";
	case AT_PHENT: return "AT_PHENT";
	case AT_PHNUM: return "AT_PHNUM";
	case AT_PAGESZ: return "AT_PAGESZ";
	case AT_BASE: return "AT_BASE";
	case AT_FLAGS: return "AT_FLAGS";
	case AT_ENTRY: return "AT_ENTRY";
	case AT_NOTELF: return "AT_NOTELF";
	case AT_UID: return "AT_UID";
	case AT_EUID: return "AT_EUID";
	case AT_GID: return "AT_GID";
	case AT_EGID: return "AT_EGID";
	case AT_PLATFORM: return "AT_PLATFORM";
	case AT_HWCAP: return "AT_HWCAP";
	case AT_CLKTCK: return "AT_CLKTCK";
	case AT_SECURE: return "AT_SECURE";
	case AT_BASE_PLATFORM: return "AT_BASE_PLATFORM";
	case AT_RANDOM: return "AT_RANDOM";
	case AT_HWCAP2: return "AT_HWCAP2";
	case 27: return "AT_RSEQ_FEATURE_SIZE";
	case 28: return "AT_RSEQ_ALIGN";
	case 29: return "AT_HWCAP3";
	case 30: return "AT_HWCAP4";
	case AT_EXECFN: return "AT_EXECFN";
	case AT_SYSINFO: return "AT_SYSINFO";
	case AT_SYSINFO_EHDR: return "AT_SYSINFO_EHDR";
	case 51: return "AT_MINSIGSTKSZ";
	}
	static char buf[32];
	snprintf(buf, sizeof buf, "AT_%lu", t);
	return buf;
}

/* readall reads a whole file (procfs files report size 0). */
static size_t readall(const char *path, char **out)
{
	size_t cap = 4096, n = 0;
	char *b = malloc(cap + 1);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || !b) {
		free(b);
		*out = NULL;
		return 0;
	}
	for (;;) {
		if (n == cap) {
			cap *= 2;
			b = realloc(b, cap + 1);
			if (!b)
				break;
		}
		ssize_t r = read(fd, b + n, cap - n);
		if (r <= 0)
			break;
		n += r;
	}
	close(fd);
	if (b)
		b[n] = 0;
	*out = b;
	return b ? n : 0;
}

static void file_kv(const char *key, const char *path)
{
	char *b;
	size_t n = readall(path, &b);
	if (!b) {
		kv(key, "(unreadable)");
		return;
	}
	kvb(key, b, n);
	free(b);
}

static void print_stack(unsigned long *sp, unsigned long **auxv_out)
{
	long argc = (long)sp[0];
	char **argv = (char **)(sp + 1);
	char **envp = argv + argc + 1;
	char key[64];
	kd("argc", argc);
	for (long i = 0; i < argc; i++) {
		snprintf(key, sizeof key, "argv[%ld]", i);
		kv(key, argv[i]);
	}
	kx("argv[argc]", (unsigned long)argv[argc]);
	long e = 0;
	for (; envp[e]; e++) {
		snprintf(key, sizeof key, "envp[%ld]", e);
		kv(key, envp[e]);
	}
	kd("envc", e);
	unsigned long *auxv = (unsigned long *)(envp + e + 1);
	*auxv_out = auxv;
	for (int i = 0;; i++) {
		snprintf(key, sizeof key, "auxv.stack[%d]", i);
		printf("%s=%s 0x%lx\n", key, auxname(auxv[2 * i]), auxv[2 * i + 1]);
		if (auxv[2 * i] == AT_NULL)
			break;
	}
	/* Where the pieces are, relative to the entry rsp. */
	kx("stack.argv_off", (unsigned long)argv - (unsigned long)sp);
	kx("stack.envp_off", (unsigned long)envp - (unsigned long)sp);
	kx("stack.auxv_off", (unsigned long)auxv - (unsigned long)sp);
}

static unsigned long auxget(unsigned long *auxv, unsigned long type, int *found)
{
	for (int i = 0; auxv[2 * i] != AT_NULL; i++)
		if (auxv[2 * i] == type) {
			*found = 1;
			return auxv[2 * i + 1];
		}
	*found = 0;
	return 0;
}

static void print_proc_auxv(unsigned long *stack_auxv)
{
	char *b;
	size_t n = readall("/proc/self/auxv", &b);
	char key[64];
	int same = 1;
	unsigned long *v = (unsigned long *)b;
	for (size_t i = 0; b && (i + 1) * 16 <= n; i++) {
		snprintf(key, sizeof key, "auxv.proc[%zu]", i);
		printf("%s=%s 0x%lx\n", key, auxname(v[2 * i]), v[2 * i + 1]);
		if (same && (v[2 * i] != stack_auxv[2 * i] || v[2 * i + 1] != stack_auxv[2 * i + 1]))
			same = 0;
		if (v[2 * i] == AT_NULL)
			break;
	}
	kv("auxv.proc_matches_stack", b && same ? "yes" : "no");
	free(b);
}

static unsigned long start_brk; /* stat field 47 */

static void print_stat(void)
{
	static const struct { int field; const char *name; } want[] = {
		{26, "start_code"}, {27, "end_code"}, {28, "start_stack"},
		{45, "start_data"}, {46, "end_data"}, {47, "start_brk"},
		{48, "arg_start"}, {49, "arg_end"}, {50, "env_start"}, {51, "env_end"},
	};
	char *b;
	readall("/proc/self/stat", &b);
	if (!b) {
		kv("stat", "(unreadable)");
		return;
	}
	char *p = strrchr(b, ')');
	int field = 2;
	char key[64];
	for (char *tok = p ? strtok(p + 1, " \n") : NULL; tok; tok = strtok(NULL, " \n")) {
		field++;
		for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
			if (want[i].field == field) {
				snprintf(key, sizeof key, "stat.%s", want[i].name);
				kx(key, strtoul(tok, NULL, 10));
				if (field == 47)
					start_brk = strtoul(tok, NULL, 10);
			}
	}
	free(b);
}

static void print_maps(int all)
{
	char *b;
	readall("/proc/self/maps", &b);
	if (!b)
		return;
	int i = 0;
	char key[64];
	for (char *line = strtok(b, "\n"); line; line = strtok(NULL, "\n"), i++) {
		if (all) {
			snprintf(key, sizeof key, "maps[%d]", i);
			kv(key, line);
		}
		if (strstr(line, "[heap]"))
			kv("maps.heap", line);
		if (strstr(line, "[stack]"))
			kv("maps.stack", line);
	}
	free(b);
}

static void print_status(void)
{
	static const char *const keys[] = {
		"Umask", "Uid", "Gid", "Groups", "NoNewPrivs", "Seccomp", "CapInh", "CapPrm",
		"CapEff", "CapBnd", "CapAmb", "SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt",
	};
	char *b;
	readall("/proc/self/status", &b);
	if (!b)
		return;
	char key[64];
	for (char *line = strtok(b, "\n"); line; line = strtok(NULL, "\n"))
		for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
			size_t l = strlen(keys[i]);
			if (strncmp(line, keys[i], l) == 0 && line[l] == ':') {
				char *v = line + l + 1;
				while (*v == ' ' || *v == '\t')
					v++;
				snprintf(key, sizeof key, "status.%s", keys[i]);
				kv(key, v);
			}
		}
	free(b);
}

/* vdso_sym finds a dynamic symbol in the vdso image at base. */
static void *vdso_sym(unsigned long base, const char *name)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)base;
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0)
		return NULL;
	const Elf64_Phdr *ph = (const Elf64_Phdr *)(base + eh->e_phoff);
	unsigned long bias = 0, dynaddr = 0;
	int haveload = 0;
	for (int i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type == PT_LOAD && !haveload) {
			bias = base + ph[i].p_offset - ph[i].p_vaddr;
			haveload = 1;
		} else if (ph[i].p_type == PT_DYNAMIC) {
			dynaddr = ph[i].p_vaddr;
		}
	}
	if (!haveload || !dynaddr)
		return NULL;
	const Elf64_Sym *sym = NULL;
	const char *str = NULL;
	const Elf32_Word *hash = NULL;
	for (const Elf64_Dyn *d = (const Elf64_Dyn *)(bias + dynaddr); d->d_tag != DT_NULL; d++) {
		if (d->d_tag == DT_SYMTAB)
			sym = (const Elf64_Sym *)(bias + d->d_un.d_ptr);
		else if (d->d_tag == DT_STRTAB)
			str = (const char *)(bias + d->d_un.d_ptr);
		else if (d->d_tag == DT_HASH)
			hash = (const Elf32_Word *)(bias + d->d_un.d_ptr);
	}
	if (!sym || !str || !hash)
		return NULL;
	for (Elf32_Word i = 0; i < hash[1]; i++)
		if (sym[i].st_shndx != SHN_UNDEF && strcmp(str + sym[i].st_name, name) == 0)
			return (void *)(bias + sym[i].st_value);
	return NULL;
}

static long long ns(const struct timespec *t) { return t->tv_sec * 1000000000LL + t->tv_nsec; }

/* clock_check calls clock_gettime through f and checks it against the
 * system call: same clock, monotonic, within a second. */
static const char *clock_check(int (*f)(clockid_t, struct timespec *))
{
	struct timespec a, b, c;
	if (syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &a) != 0)
		return "syscall failed";
	if (f(CLOCK_MONOTONIC, &b) != 0)
		return "failed";
	if (syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &c) != 0)
		return "syscall failed";
	if (ns(&b) < ns(&a) || ns(&b) > ns(&c))
		return "not between two system calls";
	struct timespec r1, r2;
	if (f(CLOCK_REALTIME, &r1) != 0 || syscall(SYS_clock_gettime, CLOCK_REALTIME, &r2) != 0)
		return "realtime failed";
	long long d = ns(&r2) - ns(&r1);
	if (d < 0 || d > 1000000000LL)
		return "realtime off by more than 1s";
	return "ok";
}

static void print_vdso(unsigned long *auxv)
{
	int found;
	unsigned long base = auxget(auxv, AT_SYSINFO_EHDR, &found);
	kv("vdso.present", found && base ? "yes" : "no");
	if (found && base) {
		void *f = vdso_sym(base, "__vdso_clock_gettime");
		kv("vdso.clock_gettime", f ? clock_check((int (*)(clockid_t, struct timespec *))f) : "symbol not found");
		void *g = vdso_sym(base, "__vdso_getcpu");
		kv("vdso.getcpu", g ? "found" : "symbol not found");
	}
	kv("libc.clock_gettime", clock_check(clock_gettime));
}

static void print_rseq(unsigned long *auxv)
{
	int found;
	unsigned long v = auxget(auxv, 27, &found);
	if (found)
		kx("rseq.auxv_feature_size", v);
	v = auxget(auxv, 28, &found);
	if (found)
		kx("rseq.auxv_align", v);
	if (&__rseq_size == NULL || &__rseq_offset == NULL) {
		kv("rseq.libc", "no __rseq_size");
		return;
	}
	kd("rseq.libc_size", __rseq_size);
	kd("rseq.libc_offset", (long)__rseq_offset);
	if (__rseq_size == 0)
		return;
	/* Re-registering the same area says EBUSY when it is registered. */
	void *area = (char *)__builtin_thread_pointer() + __rseq_offset;
	const unsigned int sig = 0x53053053; /* RSEQ_SIG on x86 */
	unsigned int len = __rseq_size < 32 ? 32 : __rseq_size;
	long r = syscall(SYS_rseq, area, len, 0, sig);
	int err = r == 0 ? 0 : errno;
	if (r == 0) /* it was not registered: undo ours */
		syscall(SYS_rseq, area, len, 1 /* RSEQ_FLAG_UNREGISTER */, sig);
	kv("rseq.reregister", errname(err));
}

static void print_brk(void)
{
	char key[64];
	unsigned long b0 = (unsigned long)sbrk(0);
	kx("brk.at_main", b0);
	void *p = sbrk(4096);
	if (p == (void *)-1) {
		kv("brk.grow_4096", errname(errno));
	} else {
		memset(p, 0xa5, 4096);
		kv("brk.grow_4096", (unsigned long)sbrk(0) == b0 + 4096 ? "ok" : "wrong end");
		sbrk(-4096);
	}
	static const size_t sizes[] = {64, 1 << 20};
	for (size_t i = 0; i < 2; i++) {
		unsigned char *m = malloc(sizes[i]);
		snprintf(key, sizeof key, "malloc.%zu", sizes[i]);
		if (!m) {
			kv(key, "failed");
			continue;
		}
		memset(m, 0x5a, sizes[i]);
		kv(key, m[sizes[i] - 1] == 0x5a ? "ok" : "bad");
		/* In the brk heap, or (large, or brk failed) in an mmap. */
		snprintf(key, sizeof key, "malloc.%zu.in_brk", sizes[i]);
		kv(key, (unsigned long)m >= start_brk && (unsigned long)m < (unsigned long)sbrk(0) ? "yes" : "no");
	}
	kx("brk.after_malloc", (unsigned long)sbrk(0));
}

int main(void)
{
	unsigned long *sp = (unsigned long *)probe_saved[S_RSP];
	unsigned long *auxv;
	char key[64], buf[4096];

	kv("probe.mode", PROBE_MODE);
	for (int i = 0; i < S_N; i++) {
		snprintf(key, sizeof key, "entry.%s", slot_names[i]);
		kx(key, probe_saved[i]);
	}
	kd("entry.rsp_mod16", (long)(probe_saved[S_RSP] % 16));
	kx("entry.addr", (unsigned long)probe_entry);

	print_stack(sp, &auxv);
	int found;
	unsigned long base = auxget(auxv, AT_BASE, &found);
	kv("entry.from", base ? "ld.so" : "kernel");
	unsigned long r = auxget(auxv, AT_RANDOM, &found);
	if (found) {
		printf("at_random.bytes=");
		for (int i = 0; i < 16; i++)
			printf("%02x", ((unsigned char *)r)[i]);
		putchar('\n');
	}
	r = auxget(auxv, AT_EXECFN, &found);
	if (found)
		kv("at_execfn", (const char *)r);
	r = auxget(auxv, AT_PLATFORM, &found);
	if (found)
		kv("at_platform", (const char *)r);
	kv("at_entry_is_probe_entry", auxget(auxv, AT_ENTRY, &found) == (unsigned long)probe_entry ? "yes" : "no");
	print_proc_auxv(auxv);

	file_kv("proc.cmdline", "/proc/self/cmdline");
	file_kv("proc.environ", "/proc/self/environ");
	file_kv("proc.comm", "/proc/self/comm");
	print_stat();
	const char *pm = getenv("PROBE_MAPS");
	print_maps(pm && strcmp(pm, "1") == 0);
	ssize_t n = readlink("/proc/self/exe", buf, sizeof buf);
	kvb("proc.exe", buf, n < 0 ? 0 : (size_t)n);
	n = readlink("/proc/self/cwd", buf, sizeof buf);
	kvb("proc.cwd", buf, n < 0 ? 0 : (size_t)n);
	print_status();
	print_rseq(auxv);
	print_vdso(auxv);

	kd("pid", getpid());
	kd("ppid", getppid());
	kd("uid", getuid());
	kd("euid", geteuid());
	kd("gid", getgid());
	kd("egid", getegid());
	kx("personality", (unsigned long)personality(0xffffffff));
	kd("dumpable", prctl(PR_GET_DUMPABLE, 0, 0, 0, 0));
	struct rlimit rl;
	getrlimit(RLIMIT_STACK, &rl);
	kx("rlimit.stack.cur", rl.rlim_cur);
	kx("rlimit.stack.max", rl.rlim_max);
	print_brk();
	kv("end", "ok");
	return fflush(stdout) == 0 ? 0 : 1;
}
