/* crash: dies of SIGSEGV, a core-dumping signal (segvguard_test.go). */
int main(void) {
	*(volatile int *)0 = 0;
	return 0;
}
