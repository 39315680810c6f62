/*
 * util.c - time, durable file writes, names (see util.h).
 */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hex.h"

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
	unsigned char raw[64];
	char digits[2 * sizeof(raw) + 1];
	size_t nb = (n + 1) / 2;

	if (nb > sizeof(raw))
		nb = sizeof(raw);
	if (getrandom(raw, nb, 0) != (ssize_t)nb) {
		/* getrandom cannot fail for small sizes after boot; be safe anyway. */
		for (size_t i = 0; i < nb; i++)
			raw[i] = (unsigned char)(rand() ^ (getpid() << 3) ^ (int)i);
	}
	hex_encode(raw, nb, digits);
	if (n > 2 * nb)
		n = 2 * nb;
	memcpy(out, digits, n);
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

void civil_from_days(int64_t days, int64_t *year, int *month, int *day)
{
	int64_t z = days + 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;

	*day = (int)(doy - (153 * mp + 2) / 5 + 1);
	*month = (int)(mp < 10 ? mp + 3 : mp - 9);
	*year = yoe + era * 400 + (*month <= 2);
}

int sha256_file_hex(const char *path, char out[65])
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	unsigned char buf[1 << 16], md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	EVP_MD_CTX *ctx;
	ssize_t n;
	int err;

	if (fd < 0)
		return -1;
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL)
		oom_abort("a digest context", 0);
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		EVP_DigestUpdate(ctx, buf, (size_t)n);
	}
	err = errno;
	close(fd);
	EVP_DigestFinal_ex(ctx, md, &len);
	EVP_MD_CTX_free(ctx);
	if (n < 0) {
		errno = err;
		return -1;
	}
	hex_encode(md, len, out);
	return 0;
}

void oom_abort(const char *what, size_t bytes)
{
	if (bytes > 0)
		fprintf(stderr, "ingesta: out of memory for %s (%zu bytes)\n", what, bytes);
	else
		fprintf(stderr, "ingesta: out of memory for %s\n", what);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		oom_abort("an allocation", n);
	return p;
}

void *xcalloc(size_t count, size_t size)
{
	void *p = calloc(count ? count : 1, size ? size : 1);

	if (p == NULL)
		oom_abort("an array", count * size);
	return p;
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (q == NULL)
		oom_abort("a growing array", n);
	return q;
}

char *xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}
