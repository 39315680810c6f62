/*
 * util.h - small things every component needs: time, files, names.
 *
 * The file helpers implement the one durable-write order ingesta relies on:
 * write a temporary file, fsync it, rename it into place, fsync the directory.
 * After fsync_dir() returns the new name survives a power cut.
 *
 * Also the one home of the calendar conversion, the file SHA-256 and the
 * out-of-memory helpers (hex is in hex.h, durations and sizes in parse.h).
 */
#ifndef INGESTA_UTIL_H
#define INGESTA_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

int64_t now_ms(void); /* wall clock, ms since the epoch */
int64_t monotonic_ms(void);
/* "2025-10-05T14:30:00Z" for unix seconds; out needs 32 bytes. */
void format_utc(char *out, size_t n, int64_t unix_sec);

/* mkdir -p with mode 0700 for every directory created. */
int mkdir_private(const char *path, struct ierr *e);
int fsync_dir(const char *dir, struct ierr *e);
/* Directory part of path into out (".." style not resolved). */
void dir_of(const char *path, char *out, size_t n);
/* Write data to path atomically and durably (tmp + fsync + rename + fsync dir),
 * file mode 0600. */
int write_file_atomic(const char *path, const void *data, size_t n, struct ierr *e);
/* Write all of buf, retrying on EINTR / short writes. */
int write_all(int fd, const void *data, size_t n);

/* Random hex (from getrandom) into out, n hex digits + NUL. */
void random_hex(char *out, size_t n);

/* true when name matches any of the comma-separated glob patterns. */
bool glob_list_match(const char *patterns, const char *name);

/* Human number "12.3 MiB". */
void human_bytes(char *out, size_t n, uint64_t bytes);

/* Proleptic Gregorian date of a day number (0 = 1970-01-01), H. Hinnant's
 * civil_from_days: exact for every int64 day number whose year fits. */
void civil_from_days(int64_t days, int64_t *year, int *month, int *day);

/* SHA-256 of a whole file as 64 hex digits + NUL (reads retried on EINTR).
 * Returns 0, or -1 with errno set when the file cannot be opened or read. */
int sha256_file_hex(const char *path, char out[65]);

/* Out of memory: a one-line message on stderr, then abort(). The x* helpers
 * never return NULL (a request of 0 bytes still returns a valid pointer);
 * xstrndup copies exactly the first n bytes of s and adds a NUL, xstrdup
 * copies the NUL-terminated s (which must not be NULL). */
_Noreturn void oom_abort(const char *what, size_t bytes);
void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrndup(const char *s, size_t n);
char *xstrdup(const char *s);

/* Set by the signal handlers in main.c; long loops poll it. */
extern volatile int ingesta_stop_requested;

#endif
