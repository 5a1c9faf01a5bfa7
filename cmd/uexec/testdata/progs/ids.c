/* Prints the credentials and AT_SECURE a program starts with. */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/auxv.h>
#include <unistd.h>

int main(void) {
	uid_t r, e, s;
	gid_t gr, ge, gs;
	getresuid(&r, &e, &s);
	getresgid(&gr, &ge, &gs);
	printf("uid %d %d %d gid %d %d %d secure %lu\n", r, e, s, gr, ge, gs, getauxval(AT_SECURE));
	return 0;
}
