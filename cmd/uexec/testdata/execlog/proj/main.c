#include <stdio.h>
int twice(int);
int main(void) { printf("%s %d\n", GREETING, twice(21)); return 0; }
