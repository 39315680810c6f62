/*
 * testlib.h - the smallest test harness that does the job: CHECK() records a
 * failure with file:line and keeps going; test_done() prints "N checks, M failed"
 * and returns the exit status for main().
 */
#ifndef INGESTA_TESTLIB_H
#define INGESTA_TESTLIB_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

extern int test_checks;
extern int test_failures;

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		test_checks++;                                                                     \
		if (!(cond)) {                                                                     \
			test_failures++;                                                           \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
		}                                                                                  \
	} while (0)

#define CHECK_STR(got, want)                                                                       \
	do {                                                                                       \
		const char *g_ = (got), *w_ = (want);                                              \
		test_checks++;                                                                     \
		if (g_ == NULL || strcmp(g_, w_) != 0) {                                           \
			test_failures++;                                                           \
			fprintf(stderr, "%s:%d: got  \"%s\"\n%*s want \"%s\"\n", __FILE__,         \
			        __LINE__, g_ ? g_ : "(null)", (int)strlen(__FILE__) + 6, "", w_);  \
		}                                                                                  \
	} while (0)

int test_done(void);

/* Entries of a directory other than dot files and `except` (NULL: none);
 * -1 when it cannot be read. */
int test_dir_entries(const char *dir, const char *except);

struct spool;
/* The first column of the first row of the printf-formatted query on the
 * spool's connection: -1 when there is no row, -2 when it does not prepare. */
int64_t test_spool_int(struct spool *sp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
