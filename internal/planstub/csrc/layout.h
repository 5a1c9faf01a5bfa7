/*
 * Where the plan stub lives: shared by stub.c and stub.go (TestLayout keeps
 * them equal). All of it is inside [RESERVED_START, RESERVED_END), 1 TiB up:
 * above every ET_EXEC base in use, far below the mmap area, the PIE base
 * (ELF_ET_DYN_BASE) and the stack. An image that needs this range is
 * refused before the stub starts.
 */
#define RESERVED_START 0x10000000000
#define RESERVED_END   0x10040000000
#define STUB_BASE      0x10000001000 /* link address: the ELF header */
#define RUN_ADDR       0x10010000000 /* the stub's data and stack; exec'd as itself, its copy after them */
#define SCRATCH_LEN    0x3000        /* the data page and two pages of stack */
#define PLAN_ADDR      0x10020000000 /* the plan, mapped privately */
#define PLAN_OFFSET    0x4000        /* a plan appended to a copy of the stub */
#define PIPE_PLAN_MAX  0x10000       /* the largest plan passed in a pipe */

#define PLAN_MAGIC   0x4c505855 /* "UXPL" little-endian */
#define PLAN_VERSION 1
#define NREGS        32
