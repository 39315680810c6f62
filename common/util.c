/*
 * util.c - time, durable file writes, names (see util.h).
 */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

volatile int ingesta_stop_requested;

int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void format_utc(char *out, size_t n, int64_t unix_sec)
{
	time_t t = (time_t)unix_sec;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int mkdir_private(const char *path, struct ierr *e)
{
	char tmp[4096];
	size_t len = strlen(path);

	if (len >= sizeof(tmp))
		return ierr_set(e, IERR_IO, "path too long: %s", path);
	memcpy(tmp, path, len + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
			return ierr_errno(e, errno, "mkdir %s", tmp);
		*p = '/';
	}
	if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
		return ierr_errno(e, errno, "mkdir %s", tmp);
	return 0;
}

int fsync_dir(const char *dir, struct ierr *e)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return ierr_errno(e, errno, "open directory %s", dir);
	if (fsync(fd) != 0) {
		int err = errno;

		close(fd);
		return ierr_errno(e, err, "fsync directory %s", dir);
	}
	close(fd);
	return 0;
}

void dir_of(const char *path, char *out, size_t n)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL) {
		snprintf(out, n, ".");
	} else if (slash == path) {
		snprintf(out, n, "/");
	} else {
		snprintf(out, n, "%.*s", (int)(slash - path), path);
	}
}

int write_all(int fd, const void *data, size_t n)
{
	const char *p = data;

	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int write_file_atomic(const char *path, const void *data, size_t n, struct ierr *e)
{
	char tmp[4096];
	char dir[4096];
	char rnd[9];
	int fd;

	random_hex(rnd, 8);
	snprintf(tmp, sizeof(tmp), "%s.tmp-%s", path, rnd);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return ierr_errno(e, errno, "create %s", tmp);
	if (write_all(fd, data, n) != 0 || fsync(fd) != 0) {
		int err = errno;

		close(fd);
		unlink(tmp);
		return ierr_errno(e, err, "write %s", tmp);
	}
	close(fd);
	if (rename(tmp, path) != 0) {
		int err = errno;

		unlink(tmp);
		return ierr_errno(e, err, "rename %s", path);
	}
	dir_of(path, dir, sizeof(dir));
	return fsync_dir(dir, e);
}

void random_hex(char *out, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[64];
	size_t nb = (n + 1) / 2;

	if (nb > sizeof(raw))
		nb = sizeof(raw);
	if (getrandom(raw, nb, 0) != (ssize_t)nb) {
		/* getrandom cannot fail for small sizes after boot; be safe anyway. */
		for (size_t i = 0; i < nb; i++)
			raw[i] = (unsigned char)(rand() ^ (getpid() << 3) ^ (int)i);
	}
	for (size_t i = 0; i < n && i / 2 < nb; i++)
		out[i] = hex[(i % 2 == 0) ? raw[i / 2] >> 4 : raw[i / 2] & 15];
	out[n] = '\0';
}

bool glob_list_match(const char *patterns, const char *name)
{
	char pat[1024];
	const char *p = patterns;

	while (p && *p) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		size_t a = 0, b = len;

		while (a < b && (p[a] == ' ' || p[a] == '\t'))
			a++;
		while (b > a && (p[b - 1] == ' ' || p[b - 1] == '\t'))
			b--;
		if (b > a && b - a < sizeof(pat)) {
			memcpy(pat, p + a, b - a);
			pat[b - a] = '\0';
			if (fnmatch(pat, name, 0) == 0)
				return true;
		}
		p = comma ? comma + 1 : NULL;
	}
	return false;
}

void human_bytes(char *out, size_t n, uint64_t bytes)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)bytes;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(out, n, "%llu B", (unsigned long long)bytes);
	else
		snprintf(out, n, "%.1f %s", v, units[u]);
}
