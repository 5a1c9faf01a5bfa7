/* memfdexec CLOEXEC NAME FILE ARGV0 [ARG]...: the kernel's own exec from
 * memory, the reference for `uexec run -`: FILE copied to a sealed memfd
 * NAME (MFD_CLOEXEC when CLOEXEC is 1), then fexecve(3). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MFD_EXEC
#define MFD_EXEC 0x10
#endif

extern char **environ;

int main(int argc, char **argv) {
	if (argc < 5)
		return 125;
	unsigned fl = MFD_ALLOW_SEALING | (atoi(argv[1]) ? MFD_CLOEXEC : 0);
	int fd = memfd_create(argv[2], fl | MFD_EXEC);
	if (fd < 0)
		fd = memfd_create(argv[2], fl);
	int in = open(argv[3], O_RDONLY | O_CLOEXEC);
	if (fd < 0 || in < 0) {
		perror("memfdexec");
		return 125;
	}
	char buf[65536];
	ssize_t n;
	while ((n = read(in, buf, sizeof buf)) > 0)
		if (write(fd, buf, n) != n)
			return 125;
	close(in);
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
		return 125;
	fexecve(fd, argv + 4, environ);
	perror("fexecve");
	return 126;
}
