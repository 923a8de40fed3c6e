/*
 * support.c - test helpers (see support.h).
 */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "support/support.h"

int64_t
support_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *
support_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	size_t cap = 4096, n = 0;
	char *data = malloc(cap);
	for (;;) {
		if (n + 1024 > cap)
			data = realloc(data, cap *= 2);
		size_t k = fread(data + n, 1, cap - n - 1, f);
		if (k == 0)
			break;
		n += k;
	}
	fclose(f);
	data[n] = '\0';
	if (len)
		*len = n;
	return data;
}

static int
read_stat(pid_t pid, char *comm, size_t commlen, pid_t *ppid, char *state)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	char *text = support_read_file(path, NULL);
	if (text == NULL)
		return -1;
	char *open = strchr(text, '('), *close = strrchr(text, ')');
	int rc = -1;
	if (open && close && close > open) {
		size_t n = (size_t)(close - open - 1);
		if (n >= commlen)
			n = commlen - 1;
		memcpy(comm, open + 1, n);
		comm[n] = '\0';
		int pp;
		if (sscanf(close + 2, "%c %d", state, &pp) == 2) {
			*ppid = pp;
			rc = 0;
		}
	}
	free(text);
	return rc;
}

int
support_children(pid_t parent, const char *comm, pid_t *out, int max)
{
	DIR *d = opendir("/proc");
	int n = 0;
	struct dirent *e;
	while (d && (e = readdir(d)) != NULL && n < max) {
		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		pid_t pid = atoi(e->d_name), ppid;
		char name[64], state;
		if (read_stat(pid, name, sizeof(name), &ppid, &state) == 0 && ppid == parent &&
		    strncmp(name, comm, 15) == 0 && state != 'Z')
			out[n++] = pid;
	}
	if (d)
		closedir(d);
	return n;
}

long
support_proc_status(pid_t pid, const char *key)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	char *text = support_read_file(path, NULL);
	if (text == NULL)
		return -1;
	long value = -1;
	size_t klen = strlen(key);
	for (char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			value = strtol(line + klen + 1, NULL, 10);
			break;
		}
	}
	free(text);
	return value;
}

int
support_process_alive(pid_t pid)
{
	char comm[64], state;
	pid_t ppid;
	if (read_stat(pid, comm, sizeof(comm), &ppid, &state) == -1)
		return 0;
	return state != 'Z';
}

int
support_free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	if (fd == -1 || bind(fd, (struct sockaddr *)&a, sizeof(a)) == -1 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) == -1) {
		if (fd != -1)
			close(fd);
		return -1;
	}
	close(fd);
	return ntohs(a.sin_port);
}

int
support_write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (f == NULL)
		return -1;
	int ok = fwrite(data, 1, len, f) == len;
	if (fclose(f) != 0)
		ok = 0;
	return ok ? 0 : -1;
}

void
support_remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[4096];
	while (d && (e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

long
support_raise_file_limit(long want)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return -1;
	if (rl.rlim_cur < (rlim_t)want) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > (rlim_t)want ?
		    (rlim_t)want : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	return (long)rl.rlim_cur;
}

int
support_wait_exit(pid_t pid, int timeout_ms, int *status)
{
	int64_t deadline = support_now_ms() + timeout_ms;
	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);
		if (r == pid)
			return 0;
		if (r == -1 || support_now_ms() >= deadline)
			return -1;
		usleep(2000);
	}
}

static char *
capture_file(void)
{
	char path[] = "/tmp/luapoold-test-run-XXXXXX";
	int fd = mkstemp(path);
	if (fd == -1)
		return NULL;
	close(fd);
	return strdup(path);
}

int
support_run(char *const argv[], int timeout_ms, int *status, char **out, char **err)
{
	char *out_path = capture_file(), *err_path = capture_file();
	int rc = -1;
	*out = *err = NULL;
	if (out_path == NULL || err_path == NULL)
		goto done;
	pid_t pid = fork();
	if (pid == -1)
		goto done;
	if (pid == 0) {
		int in = open("/dev/null", O_RDONLY);
		int o = open(out_path, O_WRONLY | O_TRUNC);
		int e = open(err_path, O_WRONLY | O_TRUNC);
		if (in == -1 || o == -1 || e == -1 || dup2(in, 0) == -1 || dup2(o, 1) == -1 ||
		    dup2(e, 2) == -1)
			_exit(126);
		closefrom(3);
		execv(argv[0], argv);
		_exit(127);
	}
	if (support_wait_exit(pid, timeout_ms, status) == -1) {
		kill(pid, SIGKILL);
		waitpid(pid, status, 0);
		goto done;
	}
	*out = support_read_file(out_path, NULL);
	*err = support_read_file(err_path, NULL);
	rc = *out && *err ? 0 : -1;
done:
	if (out_path)
		unlink(out_path);
	if (err_path)
		unlink(err_path);
	free(out_path);
	free(err_path);
	return rc;
}

long
support_nice(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	char *text = support_read_file(path, NULL);
	if (text == NULL)
		return -100;
	long nice = -100;
	char *p = strrchr(text, ')');
	/* Fields after the command: state is 3rd; nice is the 19th. */
	for (int field = 2; p && field < 19; field++)
		p = strchr(p + 1, ' ');
	if (p)
		nice = strtol(p + 1, NULL, 10);
	free(text);
	return nice;
}
