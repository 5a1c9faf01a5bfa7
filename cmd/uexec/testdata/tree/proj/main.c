#include <stdio.h>
#include "util.h"
#include "version.h"
int main(void) {
	printf("version %s triangle(10)=%d\n", VERSION, triangle(10));
	return 0;
}
