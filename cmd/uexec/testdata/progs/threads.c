/* Starts threads that each add to a shared counter and print the total. */
#include <pthread.h>
#include <stdio.h>

static long total;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void *work(void *arg) {
	for (int i = 0; i < 100000; i++) {
		pthread_mutex_lock(&mu);
		total += (long)arg;
		pthread_mutex_unlock(&mu);
	}
	return NULL;
}

int main(void) {
	pthread_t t[8];
	for (long i = 0; i < 8; i++)
		pthread_create(&t[i], NULL, work, (void *)(i + 1));
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	printf("total %ld\n", total);
	return 0;
}
