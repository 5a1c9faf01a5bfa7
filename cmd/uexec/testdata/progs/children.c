/* children: prints this process's children (/proc/self/task/TID/children)
 * and what waitpid(-1, WNOHANG|__WALL) finds, as "children=[...]
 * wait=R errno=E": a program exec'd as its caller's process has none. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
	char path[64], kids[256] = "";
	snprintf(path, sizeof path, "/proc/self/task/%d/children", getpid());
	FILE *f = fopen(path, "r");
	if (f) {
		if (!fgets(kids, sizeof kids, f))
			kids[0] = 0;
		fclose(f);
	}
	kids[strcspn(kids, " \n")] = 0;
	errno = 0;
	int r = waitpid(-1, 0, __WALL | WNOHANG);
	printf("children=[%s] wait=%d errno=%d\n", kids, r, r < 0 ? errno : 0);
	return 0;
}
