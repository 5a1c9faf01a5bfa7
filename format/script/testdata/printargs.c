// printargs writes each of its arguments followed by a NUL byte, so that a
// test can compare argv exactly, CRs and newlines included.
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
	for (int i = 0; i < argc; i++)
		if (write(1, argv[i], strlen(argv[i]) + 1) < 0)
			return 1;
	return 0;
}
