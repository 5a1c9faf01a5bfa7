/*
 * uexec's plan stub: a freestanding x86-64 program (no libc, no SSE) that
 * builds a planned image in its own process and jumps to it. The kernel's
 * exec of the stub already flushed what a new image needs (other threads,
 * caught handlers, close-on-exec descriptors, rseq, fs/gs, FPU, a vfork
 * parent); the plan does the rest with ordinary system calls. The format of
 * the plan is package internal/wire's; build.sh turns this file into
 * stub.elf, and TestStubBuild checks that stub.elf is exactly its build.
 *
 * Steps:
 *  1. _start maps the stub's data and stack at RUN_ADDR. Exec'd as the
 *     interpreter of its launcher (a file with no PT_LOAD, whose PT_INTERP
 *     names the stub: AT_ENTRY is not the stub's), the stub's file is not
 *     the process's exe, so prctl(PR_SET_MM_MAP)'s exe_fd may be set while
 *     the stub runs from it: nothing more. Exec'd as itself, _start also
 *     copies the stub into that anonymous memory, continues there (by
 *     iretq: see _start) and unmaps the stub's file, so that no mapping of
 *     the exe's file is left (exe_fd fails with EBUSY while one is).
 *  2. stub_main reads what only the running process knows (its stack top,
 *     from AT_EXECFN; its vdso, AT_SYSINFO_EHDR), maps the plan from the
 *     descriptor named by argv[1] (a number, or a path to open; a pipe is
 *     read into anonymous memory), or, exec'd
 *     by descriptor (AT_EXECFN "/dev/fd/N", whatever its argv: a tree's
 *     redirect passes the caller's own), reads it from its own file (a copy
 *     of the stub with the plan at PLAN_OFFSET, through /proc/self/exe: the
 *     descriptor was close-on-exec, so that a caller whose exec of the stub
 *     failed does not keep it); closes it, and runs the plan's ops.
 *  3. The last op (finish) unmaps everything of the stub's, from
 *     RESERVED_START to the plan's end, and enters the
 *     program: it jumps to a `syscall` in the vdso that is followed only by
 *     register clears and `ret`, with rax = munmap and the program's entry
 *     stored just below its stack pointer. The stub's code is gone before
 *     the program's first instruction, and every register is what the
 *     kernel leaves but rflags: the clears set ZF and PF (0x246, not
 *     0x202), unless the `ret` goes through the image's own bytes first
 *     (a `popfq; ret` with 0x202 on the stack, or an `add $n, %rsp`, pops
 *     and `ret` whose result leaves 0x202), with zeros or 0x202 between
 *     them and the entry on the stack.
 * Any failure kills the process with SIGSEGV, as Linux does past the point
 * of no return, after writing {op index, result} to the plan's status
 * descriptor, if it has one.
 */
#include "layout.h"

typedef unsigned long u64;
typedef long s64;
typedef unsigned int u32;
typedef unsigned char u8;

/* An op: see internal/wire. Value i is R[reg[i]] + imm[i]. */
struct op {
	u8 kind, flags, dst, cond;
	u32 nr;
	u8 reg[8];
	s64 imm[8];
};

struct hdr {
	u32 magic, version, nops, opsize;
	s64 statusfd;
	u64 dataoff, datalen, size;
};

enum { K_SYSCALL = 1, K_SET, K_MIN, K_STORE, K_COPY, K_FILL0, K_FINISH, K_SUB, K_LOAD, K_CHECK };
enum { F_MAYFAIL = 1, F_EXPECT = 2, F_IFERR = 4, F_IFOK = 8 };
enum { R_ZERO, R_DATA, R_TOP, R_VDSO, R_SP, R_UNMAPLEN, R_FIRST_FREE };

#define AT_EXECFN 31
#define AT_SYSINFO_EHDR 33

/* The stub's data: the first page at RUN_ADDR, mapped by _start (the
 * stub's text is read-only, and as an interpreter it runs where the kernel
 * mapped it). Its ELF has one PT_LOAD and no .bss: one mapping fewer for
 * the kernel's exec. */
#define STR_(x) #x
#define STR(x) STR_(x)
#define R ((u64 *)RUN_ADDR)
#define status_fd (*(s64 *)(RUN_ADDR + 8 * NREGS))

static s64 sys6(s64 n, u64 a, u64 b, u64 c, u64 d, u64 e, u64 f)
{
	register u64 r10 __asm__("r10") = d;
	register u64 r8 __asm__("r8") = e;
	register u64 r9 __asm__("r9") = f;
	s64 ret;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

static int iserr(u64 v) { return v > (u64)-4096; }

/* die reports the failed op and faults: a real SIGSEGV, even if blocked.
 * The write goes to the last byte of the address space, which no process
 * can map (a plan may have mapped page 0: an image placed at 0). */
static __attribute__((noreturn)) void die(u64 step, s64 res)
{
	if (status_fd >= 0) {
		s64 rec[2] = {(s64)step, res};
		sys6(1 /* write */, status_fd, (u64)rec, sizeof rec, 0, 0, 0);
	}
	for (;;)
		__asm__ volatile("movb $0, -1" ::: "memory");
}

/* gcc may emit calls to these two for loops and struct copies. */
void *memcpy(void *d, const void *s, u64 n)
{
	void *r = d;
	__asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
	return r;
}

void *memset(void *d, int c, u64 n)
{
	void *r = d;
	__asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
	return r;
}

static u64 val(const struct op *o, int i) { return R[o->reg[i]] + (u64)o->imm[i]; }

/*
 * finish leaves the stub for good. With a gadget: rsp = sp-8 holding the
 * entry; rax = munmap, rdi/rsi = the range; every other register 0; jump to
 * the vdso's `syscall`, whose tail clears rcx, rdx, rsi, rdi and r11 and
 * returns into the entry with rsp = sp. Without one (a vdso without such a
 * tail), the same registers, and `ret` from the stub's page, which stays.
 * With via (the image's bytes that set rflags, then `ret`), the stack holds
 * via, n words of fill and the entry from sp-8*(n+2): the `ret` goes
 * through via first, which pops the n words.
 */
static __attribute__((noreturn)) void finish(u64 gadget, u64 entry, u64 sp, u64 via, u64 n, u64 fill,
					     u64 start, u64 len)
{
	u64 *top = (u64 *)sp;
	top[-1] = entry;
	u64 rsp = sp - 8;
	if (via) {
		for (u64 i = 0; i < n; i++)
			top[-2 - (s64)i] = fill;
		top[-2 - (s64)n] = via;
		rsp = sp - 8 * (n + 2);
	}
	register u64 r11 __asm__("r11") = rsp;
	if (gadget)
		__asm__ volatile("mov %%r11, %%rsp\n\t"
				 "xor %%ebx, %%ebx\n\t"
				 "xor %%ebp, %%ebp\n\t"
				 "xor %%r8d, %%r8d\n\t"
				 "xor %%r9d, %%r9d\n\t"
				 "xor %%r10d, %%r10d\n\t"
				 "xor %%r12d, %%r12d\n\t"
				 "xor %%r13d, %%r13d\n\t"
				 "xor %%r14d, %%r14d\n\t"
				 "xor %%r15d, %%r15d\n\t"
				 "jmp *%%rcx"
				 :
				 : "a"(11), "D"(start), "S"(len), "d"(0), "c"(gadget), "r"(r11)
				 : "memory");
	else
		__asm__ volatile("mov %%r11, %%rsp\n\t"
				 "xor %%eax, %%eax\n\t"
				 "xor %%ebx, %%ebx\n\t"
				 "xor %%ecx, %%ecx\n\t"
				 "xor %%edx, %%edx\n\t"
				 "xor %%esi, %%esi\n\t"
				 "xor %%edi, %%edi\n\t"
				 "xor %%ebp, %%ebp\n\t"
				 "xor %%r8d, %%r8d\n\t"
				 "xor %%r9d, %%r9d\n\t"
				 "xor %%r10d, %%r10d\n\t"
				 "xor %%r11d, %%r11d\n\t"
				 "xor %%r12d, %%r12d\n\t"
				 "xor %%r13d, %%r13d\n\t"
				 "xor %%r14d, %%r14d\n\t"
				 "xor %%r15d, %%r15d\n\t"
				 "ret"
				 :
				 : "r"(r11)
				 : "memory");
	__builtin_unreachable();
}

static u64 strlen_(const char *s)
{
	u64 n = 0;
	while (s[n])
		n++;
	return n;
}

__attribute__((noreturn, used)) void stub_main(u64 *sp)
{
	status_fd = -1;
	u64 argc = sp[0];
	char **argv = (char **)(sp + 1);
	u64 *p = (u64 *)(argv + argc + 1);
	while (*p)
		p++;
	u64 execfn = 0;
	for (p++; p[0]; p += 2) {
		if (p[0] == AT_SYSINFO_EHDR)
			R[R_VDSO] = p[1];
		if (p[0] == AT_EXECFN)
			execfn = p[1];
	}
	/* Exec'd by descriptor N: its file holds the plan after the stub. */
	static const char devfd[] = "/dev/fd/";
	int self = execfn != 0;
	for (int i = 0; self && devfd[i]; i++)
		self = ((char *)execfn)[i] == devfd[i];
	s64 selffd = -1, selfend = 0;
	if (self) {
		selffd = sys6(257 /* openat */, (u64)-100 /* AT_FDCWD */, (u64)"/proc/self/exe", 0x80000 /* O_RDONLY|O_CLOEXEC */, 0, 0, 0);
		if (selffd < 0)
			die(-1UL, selffd);
		selfend = sys6(8 /* lseek */, (u64)selffd, 0, 2 /* SEEK_END */, 0, 0, 0);
		if (selfend >= 0 && selfend <= PLAN_OFFSET) {
			/* The stub itself, exec'd by descriptor: no plan. */
			sys6(3 /* close */, (u64)selffd, 0, 0, 0, 0, 0);
			self = 0;
		}
	}
	if (argc < 2 && !self) {
		/* Run by hand: there is no plan, and nothing was changed yet. */
		sys6(231 /* exit_group */, 127, 0, 0, 0, 0, 0);
	}
	if (!execfn)
		die(-1UL, -22);
	/* fs/exec.c: the exec's file name is copied first, below 8 zero bytes
	 * at the very top of the stack mapping. */
	R[R_TOP] = execfn + strlen_((char *)execfn) + 1 + 8;
	R[R_SP] = (u64)sp;

	/* argv[1] is the plan's descriptor, or a path to open (a tracer's
	 * /proc/PID/fd/N). The descriptor is a sealed memfd, mapped, or a
	 * pipe (Start's, for a plan of at most PIPE_PLAN_MAX bytes: no shmem
	 * inode to make), read. */
	s64 size;
	u64 mapped = 0;
	if (self) {
		u64 fd = (u64)selffd;
		s64 end = selfend;
		size = end - PLAN_OFFSET;
		if (end < 0 || size < (s64)sizeof(struct hdr) || size > (s64)(RESERVED_END - PLAN_ADDR))
			die(-1UL, end < 0 ? end : -8);
		/* Read, not mapped: no mapping of the old exe may be left when
		 * prctl sets exe_fd (EBUSY). */
		s64 m = sys6(9 /* mmap */, PLAN_ADDR, (u64)size, 3,
			     0x108022 /* MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE|MAP_FIXED_NOREPLACE */, -1UL, 0);
		if ((u64)m != PLAN_ADDR)
			die(-1UL, m);
		for (s64 got = 0; got < size;) {
			s64 n = sys6(17 /* pread64 */, fd, PLAN_ADDR + (u64)got, (u64)(size - got), PLAN_OFFSET + (u64)got, 0, 0);
			if (n <= 0)
				die(-1UL, n < 0 ? n : -8);
			got += n;
		}
		sys6(3 /* close */, fd, 0, 0, 0, 0, 0);
	} else {
		u64 fd = 0;
		if (argv[1][0] == '/') {
			s64 r = sys6(257 /* openat */, (u64)-100 /* AT_FDCWD */, (u64)argv[1], 0x80000 /* O_RDONLY|O_CLOEXEC */, 0, 0, 0);
			if (r < 0)
				die(-1UL, r);
			fd = (u64)r;
		} else {
			for (char *c = argv[1]; *c; c++) {
				if (*c < '0' || *c > '9')
					die(-1UL, -22);
				fd = fd * 10 + (u64)(*c - '0');
			}
		}
		size = sys6(8 /* lseek */, fd, 0, 2 /* SEEK_END */, 0, 0, 0);
		if (size == -29 /* ESPIPE */) {
			/* A pipe holding the whole plan, its writing end closed
			 * before the stub's fork: read into PIPE_PLAN_MAX bytes of
			 * anonymous memory, until the header's size is in. */
			s64 m = sys6(9 /* mmap */, PLAN_ADDR, PIPE_PLAN_MAX, 3,
				     0x100022 /* MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE */, -1UL, 0);
			if ((u64)m != PLAN_ADDR)
				die(-1UL, m);
			mapped = PIPE_PLAN_MAX;
			const struct hdr *ph = (const struct hdr *)PLAN_ADDR;
			for (size = 0; size < (s64)sizeof(struct hdr) || (u64)size < ph->size;) {
				s64 n = sys6(0 /* read */, fd, PLAN_ADDR + (u64)size, PIPE_PLAN_MAX - (u64)size, 0, 0, 0);
				if (n <= 0)
					die(-1UL, n < 0 ? n : -8);
				size += n;
				if (size >= (s64)sizeof(struct hdr) && ph->size > PIPE_PLAN_MAX)
					die(-1UL, -8);
			}
		} else {
			if (size < (s64)sizeof(struct hdr) || size > (s64)(RESERVED_END - PLAN_ADDR))
				die(-1UL, size < 0 ? size : -8);
			s64 m = sys6(9 /* mmap */, PLAN_ADDR, (u64)size, 3 /* PROT_READ|PROT_WRITE */,
				     0x108002 /* MAP_PRIVATE|MAP_POPULATE|MAP_FIXED_NOREPLACE */, fd, 0);
			if ((u64)m != PLAN_ADDR)
				die(-1UL, m);
		}
		sys6(3 /* close */, fd, 0, 0, 0, 0, 0);
	}
	if (!mapped)
		mapped = (u64)size;

	const struct hdr *h = (const struct hdr *)PLAN_ADDR;
	status_fd = h->statusfd;
	if (h->magic != PLAN_MAGIC || h->version != PLAN_VERSION || h->opsize != sizeof(struct op) ||
	    h->size != (u64)size || h->dataoff > (u64)size || h->datalen > (u64)size - h->dataoff ||
	    (u64)h->nops > ((u64)size - sizeof *h) / sizeof(struct op) ||
	    sizeof *h + (u64)h->nops * sizeof(struct op) > h->dataoff)
		die(-1UL, -8 /* ENOEXEC */);
	R[R_DATA] = PLAN_ADDR + h->dataoff;
	R[R_UNMAPLEN] = ((PLAN_ADDR + mapped + 4095) & ~4095UL) - RESERVED_START;

	const struct op *ops = (const struct op *)(h + 1);
	for (u64 i = 0; i < h->nops; i++) {
		const struct op *o = &ops[i];
		if (o->dst >= NREGS || o->cond >= NREGS)
			die(i, -8);
		for (int j = 0; j < 8; j++)
			if (o->reg[j] >= NREGS)
				die(i, -8);
		if ((o->flags & F_IFERR) && !iserr(R[o->cond]))
			continue;
		if ((o->flags & F_IFOK) && iserr(R[o->cond]))
			continue;
		u64 res = 0;
		if (o->kind == K_SYSCALL) {
			res = (u64)sys6(o->nr, val(o, 0), val(o, 1), val(o, 2), val(o, 3), val(o, 4), val(o, 5));
			if (iserr(res) && !(o->flags & F_MAYFAIL))
				die(i, (s64)res);
			if ((o->flags & F_EXPECT) && res != val(o, 6))
				die(i, (s64)res);
		} else if (o->kind == K_SET) {
			res = val(o, 0) + val(o, 1);
		} else if (o->kind == K_LOAD) {
			res = *(const u64 *)val(o, 0);
		} else if (o->kind == K_CHECK) {
			if (val(o, 0) != val(o, 1))
				die(i, -116 /* ESTALE */);
		} else if (o->kind == K_SUB) {
			res = val(o, 0) - val(o, 1);
		} else if (o->kind == K_MIN) {
			u64 a = val(o, 0), b = val(o, 1);
			res = a < b ? a : b;
		} else if (o->kind == K_STORE) {
			*(u64 *)val(o, 0) = val(o, 1);
		} else if (o->kind == K_COPY) {
			memcpy((void *)val(o, 0), (const void *)val(o, 1), val(o, 2));
		} else if (o->kind == K_FILL0) {
			memset((void *)val(o, 0), 0, val(o, 1));
		} else if (o->kind == K_FINISH) {
			if (val(o, 4) > 32)
				die(i, -22);
			finish(val(o, 0), val(o, 1), val(o, 2), val(o, 3), val(o, 4), val(o, 5), RESERVED_START,
			       R[R_UNMAPLEN]);
		} else {
			die(i, -8);
		}
		if (o->dst)
			R[o->dst] = res + val(o, 7);
	}
	die(h->nops, -8);
}

/* The stub's data and stack are SCRATCH_LEN bytes at RUN_ADDR: the
 * kernel's stack is where the program's goes. */
__asm__(".text\n"
	".globl _start\n"
	"_start:\n"
	"	mov %rsp, %r12\n"
	/* rsi = the aux vector, past argc, argv and envp */
	"	mov (%rsp), %rax\n"
	"	lea 16(%rsp,%rax,8), %rsi\n"
	".Lenv:	lodsq\n"
	"	test %rax, %rax\n"
	"	jne .Lenv\n"
	/* AT_ENTRY is _start when the stub was exec'd as itself */
	".Laux:	mov (%rsi), %rax\n"
	"	test %rax, %rax\n"
	"	je .Lcopy\n"
	"	add $16, %rsi\n"
	"	cmp $9, %rax\n"
	"	jne .Laux\n"
	"	lea _start(%rip), %rax\n"
	"	cmp %rax, -8(%rsi)\n"
	"	je .Lcopy\n"
	/* The launcher's interpreter: the scratch pages alone, RW; r13 = 0 */
	"	mov $" STR(SCRATCH_LEN) ", %esi\n"
	"	mov $3, %edx\n"
	"	xor %r13d, %r13d\n"
	"	jmp .Lmap\n"
	/* r14 = the image's length: its one PT_LOAD's p_filesz (the ELF
	 * header and the program headers are in it); r13 = that in pages;
	 * the scratch pages and the copy, RWX */
	".Lcopy:\n"
	"	lea __ehdr_start(%rip), %rsi\n"
	"	mov 0x20(%rsi), %rax\n"
	"	mov 0x20(%rsi,%rax), %r14\n"
	"	lea 4095(%r14), %r13\n"
	"	and $-4096, %r13\n"
	"	lea " STR(SCRATCH_LEN) "(%r13), %rsi\n"
	"	mov $7, %edx\n"
	/* mmap(RUN_ADDR, rsi, edx, MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE|MAP_FIXED_NOREPLACE, -1, 0):
	 * populated in one go, not a page fault per page of the copy and its
	 * stack */
	".Lmap:\n"
	"	mov $9, %eax\n"
	"	movabs $" STR(RUN_ADDR) ", %rdi\n"
	"	mov $0x108022, %r10d\n"
	"	mov $-1, %r8\n"
	"	xor %r9d, %r9d\n"
	"	syscall\n"
	"	cmp %rdi, %rax\n"
	"	jne .Ldie\n"
	"	test %r13, %r13\n"
	"	je .Lmain\n"
	/* copy the image after the scratch pages, then continue in the copy */
	"	lea " STR(SCRATCH_LEN) "(%rax), %rdi\n"
	"	lea __ehdr_start(%rip), %rsi\n"
	"	mov %r14, %rcx\n"
	"	rep movsb\n"
	"	lea .Lcopied(%rip), %rax\n"
	"	lea __ehdr_start(%rip), %rcx\n"
	"	sub %rcx, %rax\n"
	"	movabs $" STR(RUN_ADDR) " + " STR(SCRATCH_LEN) ", %rcx\n"
	"	add %rcx, %rax\n"
	/* into the copy by iretq, a serializing instruction: a jump to the
	 * bytes just stored was seen here to run what was there before, now
	 * and then (1 in ~10^4 execs of a tree: the munmap below made with
	 * eax still the jump's target, ENOSYS) */
	"	mov %rsp, %rdx\n"
	"	mov %ss, %ecx\n"
	"	push %rcx\n"
	"	push %rdx\n"
	"	pushfq\n"
	"	mov %cs, %ecx\n"
	"	push %rcx\n"
	"	push %rax\n"
	"	iretq\n"
	/* munmap(STUB_BASE, r13): no mapping of the stub's file is left */
	".Lcopied:\n"
	"	mov $11, %eax\n"
	"	movabs $" STR(STUB_BASE) ", %rdi\n"
	"	mov %r13, %rsi\n"
	"	syscall\n"
	"	test %rax, %rax\n"
	"	jne .Ldie\n"
	/* rsp = the top of the scratch pages */
	".Lmain:\n"
	"	movabs $" STR(RUN_ADDR) " + " STR(SCRATCH_LEN) ", %rsp\n"
	"	mov %r12, %rdi\n"
	"	call stub_main\n"
	".Ldie:	movb $0, -1\n"
	"	jmp .Ldie\n");
