/* testlib.c - counters behind testlib.h, the spool query helper and the
 * directory count. */
#include "testlib.h"

#include <dirent.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <string.h>

#include "spool.h"

int test_checks;
int test_failures;

int test_dir_entries(const char *dir, const char *except)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.' && (except == NULL || strcmp(de->d_name, except) != 0);
	closedir(d);
	return n;
}

int test_done(void)
{
	printf("%d checks, %d failed\n", test_checks, test_failures);
	return test_failures == 0 ? 0 : 1;
}

int64_t test_spool_int(struct spool *sp, const char *fmt, ...)
{
	char sql[1024];
	sqlite3_stmt *st;
	int64_t v = -1;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	if (sqlite3_prepare_v2(spool_db(sp), sql, -1, &st, NULL) != SQLITE_OK)
		return -2;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}
