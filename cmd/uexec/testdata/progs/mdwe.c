/* mdwe PROGRAM [ARG]...: runs PROGRAM under memory-deny-write-execute
 * (prctl PR_SET_MDWE with PR_MDWE_REFUSE_EXEC_GAIN, as systemd's
 * MemoryDenyWriteExecute= sets it where the kernel has it), which the exec
 * keeps. */
#include <stdio.h>
#include <sys/prctl.h>
#include <unistd.h>

#ifndef PR_SET_MDWE
#define PR_SET_MDWE 65
#endif
#ifndef PR_MDWE_REFUSE_EXEC_GAIN
#define PR_MDWE_REFUSE_EXEC_GAIN 1
#endif

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: mdwe PROGRAM [ARG]...\n");
		return 2;
	}
	if (prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0) {
		perror("prctl(PR_SET_MDWE)");
		return 1;
	}
	execvp(argv[1], argv + 1);
	perror(argv[1]);
	return 127;
}
