/*
 * log.c - logfmt / JSON event lines on stderr or LOG_FILE (see log.h).
 *
 * Each event is formatted into one buffer and written with a single write(2),
 * so lines from several threads or processes sharing a file never interleave.
 * Secrets registered at start are scrubbed from every line before it leaves.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"

#define MAX_SECRETS 32

static enum log_level min_level = LOG_INFO;
static bool json_format;
static char *log_path;
static int log_fd = STDERR_FILENO;
static char *secrets[MAX_SECRETS];
static int nsecrets;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"debug", "info", "warning", "error", "critical"};

int log_level_parse(const char *name)
{
	static const char *const upper[] = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"};

	for (int i = 0; i < 5; i++) {
		if (strcasecmp(name, upper[i]) == 0)
			return i;
	}
	if (strcasecmp(name, "WARN") == 0)
		return LOG_WARNING;
	return -1;
}

void log_setup(enum log_level level, bool json, const char *path)
{
	min_level = level;
	json_format = json;
	free(log_path);
	log_path = path && *path ? strdup(path) : NULL;
	log_reopen();
}

int log_reopen(void)
{
	int fd;

	if (log_path == NULL)
		return 0;
	fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	pthread_mutex_lock(&log_lock);
	if (log_fd != STDERR_FILENO)
		close(log_fd);
	log_fd = fd;
	pthread_mutex_unlock(&log_lock);
	return 0;
}

void log_add_secret(const char *secret)
{
	/* Very short "secrets" would scrub ordinary words; they are not secret anyway. */
	if (secret == NULL || strlen(secret) < 4 || nsecrets == MAX_SECRETS)
		return;
	for (int i = 0; i < nsecrets; i++) {
		if (strcmp(secrets[i], secret) == 0)
			return;
	}
	secrets[nsecrets++] = strdup(secret);
}

bool log_enabled(enum log_level level)
{
	return level >= min_level;
}

void log_scrub(char *s, unsigned long size)
{
	static const char mark[] = "[REDACTED]";

	for (int i = 0; i < nsecrets; i++) {
		size_t sl = strlen(secrets[i]);
		char *p;

		while ((p = strstr(s, secrets[i])) != NULL) {
			size_t tail = strlen(p + sl);
			size_t ml = sl < sizeof(mark) - 1 ? sl : sizeof(mark) - 1;

			/* The mark is never longer than the secret it replaces. */
			memcpy(p, mark, ml);
			memmove(p + ml, p + sl, tail + 1);
			(void)size;
		}
	}
}

static bool needs_quotes(const char *v)
{
	if (*v == '\0')
		return true;
	for (; *v; v++) {
		if (*v <= ' ' || *v == '"' || *v == '=' || *v == '\\')
			return true;
	}
	return false;
}

static void put_escaped(struct buf *b, const char *v)
{
	for (; *v; v++) {
		unsigned char c = (unsigned char)*v;

		if (c == '"' || c == '\\') {
			buf_putc(b, '\\');
			buf_putc(b, (char)c);
		} else if (c == '\n') {
			buf_puts(b, "\\n");
		} else if (c < 0x20) {
			buf_printf(b, "\\u%04x", c);
		} else {
			buf_putc(b, (char)c);
		}
	}
}

static void put_field(struct buf *b, const char *k, const char *v, bool first)
{
	if (json_format) {
		buf_puts(b, first ? "\"" : ",\"");
		put_escaped(b, k);
		buf_puts(b, "\":\"");
		put_escaped(b, v);
		buf_putc(b, '"');
		return;
	}
	if (!first)
		buf_putc(b, ' ');
	buf_puts(b, k);
	buf_putc(b, '=');
	if (needs_quotes(v)) {
		buf_putc(b, '"');
		put_escaped(b, v);
		buf_putc(b, '"');
	} else {
		buf_puts(b, v);
	}
}

void log_event(enum log_level level, const char *msg, ...)
{
	struct buf b = {0};
	struct timeval tv;
	struct tm tm;
	char ts[64];
	va_list ap;
	const char *k;

	if (level < min_level)
		return;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	         (int)(tv.tv_usec / 1000));
	if (json_format)
		buf_putc(&b, '{');
	put_field(&b, "ts", ts, true);
	put_field(&b, "level", level_names[level], false);
	put_field(&b, "msg", msg, false);
	va_start(ap, msg);
	while ((k = va_arg(ap, const char *)) != NULL) {
		const char *v = va_arg(ap, const char *);

		put_field(&b, k, v ? v : "", false);
	}
	va_end(ap);
	if (json_format)
		buf_putc(&b, '}');
	buf_putc(&b, '\n');
	buf_cstr(&b);
	log_scrub(b.data, b.cap);
	pthread_mutex_lock(&log_lock);
	{
		size_t len = strlen(b.data), off = 0;

		while (off < len) {
			ssize_t n = write(log_fd, b.data + off, len - off);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			off += (size_t)n;
		}
	}
	pthread_mutex_unlock(&log_lock);
	buf_free(&b);
}
