/*
 * test_status.c - `ingesta status` reads what is there or fails: a query that
 * cannot be prepared is an error naming the spool, never an empty table with
 * exit 0 (status.h).
 */
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "spool.h"
#include "status.h"
#include "testlib.h"

static char *print(struct spool *sp, bool json, int *rc, struct ierr *e)
{
	struct status_opts o = {.json = json, .quota_bytes = 0};
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);

	*rc = status_print(sp, &o, out, e);
	fclose(out);
	return text;
}

int main(void)
{
	char dir[] = "/tmp/ingesta-test-status-XXXXXX";
	char cmd[128];
	struct ierr e = {0};
	struct status_summary s;
	struct status_check_opts co = {.max_age_ms = 3600000, .max_spool_fraction = 0.9};
	struct spool *sp;
	char *text;
	int rc;

	if (mkdtemp(dir) == NULL)
		return 1;
	sp = spool_open(dir, SPOOL_ROLE_OPERATOR, &e);
	CHECK(sp != NULL);
	if (sp == NULL)
		return test_done();

	/* A healthy empty spool: the state table and the table header. */
	text = print(sp, false, &rc, &e);
	CHECK(rc == 0);
	CHECK(text && strstr(text, "uploaded") && strstr(text, "source"));
	free(text);
	text = print(sp, true, &rc, &e);
	CHECK(rc == 0);
	CHECK(text && strstr(text, "\"tables\":[],\"recent_errors\":[],\"incremental\":[]}"));
	free(text);

	/* Take the segments table away: every query of status fails. */
	CHECK(sqlite3_exec(spool_db(sp), "ALTER TABLE segments RENAME TO segments_gone", NULL, NULL,
	                   NULL) == SQLITE_OK);
	for (int json = 0; json < 2; json++) {
		memset(&e, 0, sizeof(e));
		text = print(sp, json, &rc, &e);
		CHECK(rc == -1);
		CHECK(e.code == IERR_SPOOL);
		CHECK(strstr(e.msg, "spool.db") != NULL);
		CHECK(strstr(e.msg, "no such table: segments") != NULL);
		CHECK(text != NULL && text[0] == '\0'); /* nothing printed, not half a status */
		free(text);
	}
	memset(&e, 0, sizeof(e));
	CHECK(status_summary_load(sp, &s, &e) == -1 && e.code == IERR_SPOOL);
	{
		char *t = NULL;
		size_t len = 0;
		FILE *out = open_memstream(&t, &len);

		memset(&e, 0, sizeof(e));
		CHECK(status_check(sp, &co, out, &e) == -1 && e.code == IERR_SPOOL);
		fclose(out);
		free(t);
	}
	/* And back: the same spool reads again (no transaction left open). */
	CHECK(sqlite3_exec(spool_db(sp), "ALTER TABLE segments_gone RENAME TO segments", NULL, NULL,
	                   NULL) == SQLITE_OK);
	text = print(sp, false, &rc, &e);
	CHECK(rc == 0);
	free(text);

	spool_close(sp);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return test_done();
}
