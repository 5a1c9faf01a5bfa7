/* landlockexec DIR[:DIR]... PROGRAM [ARG]...: runs PROGRAM under a Landlock
 * ruleset that allows executing only files beneath the DIRs (a sandbox).
 * uexec's stub lives elsewhere, so an exec of the stub is refused (EACCES)
 * and the kernel's exec of the program must be used instead. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/landlock.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: landlockexec DIR[:DIR]... PROGRAM [ARG]...\n");
		return 2;
	}
	struct landlock_ruleset_attr attr = {.handled_access_fs = LANDLOCK_ACCESS_FS_EXECUTE};
	int rs = syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
	if (rs < 0) {
		perror("landlock_create_ruleset");
		return 1;
	}
	for (char *dir = strtok(argv[1], ":"); dir; dir = strtok(NULL, ":")) {
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
	execv(argv[2], argv + 2);
	perror(argv[2]);
	return 127;
}
