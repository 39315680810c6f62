/*
 * test_collector_bucket.c - collector_bucket() (collector/collector.c): the
 * target bucket is S3_BUCKET, else the original deployment's per-source key
 * that the driver names in source_ops.legacy_bucket_key (S3_BUCKET_MS1 for
 * MySQL, MS2 for PostgreSQL, MS3 for MongoDB, none for SQLite), else a
 * configuration error.
 */
#include <stdlib.h>
#include <string.h>

#include "collector.h"
#include "config.h"
#include "source.h"
#include "testlib.h"

/* collector_bucket() of the config text, copied into out ("" when NULL);
 * returns the error message ("" when a bucket was found). */
static const char *bucket_of(const char *text, char *out, size_t n)
{
	static struct ierr e;
	struct config *c;
	const char *b;

	ierr_clear(&e);
	out[0] = '\0';
	c = config_parse_text(text, "t.env", NULL, false, &e);
	CHECK(c != NULL);
	if (c == NULL)
		return e.msg;
	b = collector_bucket(c, &e);
	if (b != NULL) {
		snprintf(out, n, "%s", b);
		CHECK(e.msg[0] == '\0');
	} else {
		CHECK(e.code == IERR_CONFIG);
	}
	config_free(c);
	return b != NULL ? "" : e.msg;
}

#define LEGACY "S3_BUCKET_MS1=ms1-bucket\nS3_BUCKET_MS2=ms2-bucket\nS3_BUCKET_MS3=ms3-bucket\n"

static void test_legacy_keys(void)
{
	static const struct {
		const char *db_type, *key;
	} want[] = {{"sqlite", NULL},
	            {"mysql", "S3_BUCKET_MS1"},
	            {"mariadb", "S3_BUCKET_MS1"},
	            {"postgresql", "S3_BUCKET_MS2"},
	            {"postgres", "S3_BUCKET_MS2"},
	            {"mongodb", "S3_BUCKET_MS3"},
	            {"mongo", "S3_BUCKET_MS3"}};

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const struct source_ops *ops = source_lookup(want[i].db_type);

		CHECK(ops != NULL);
		if (ops == NULL)
			continue;
		if (want[i].key == NULL)
			CHECK(ops->legacy_bucket_key == NULL);
		else
			CHECK_STR(ops->legacy_bucket_key, want[i].key);
	}
	CHECK(source_lookup("oracle") == NULL);
}

static void test_bucket(void)
{
	static const char *const unset =
	    "S3_BUCKET: not set (an S3 bucket name, or file:///path for a local directory)";
	static const struct {
		const char *db_type, *bucket;
	} by_type[] = {{"mysql", "ms1-bucket"},      {"mariadb", "ms1-bucket"},
	               {"postgresql", "ms2-bucket"}, {"postgres", "ms2-bucket"},
	               {"mongodb", "ms3-bucket"},    {"mongo", "ms3-bucket"}};
	char text[512], got[256];

	/* S3_BUCKET wins over every legacy key, for every source. */
	for (size_t i = 0; i < sizeof(by_type) / sizeof(by_type[0]); i++) {
		snprintf(text, sizeof(text), "DB_TYPE=%s\nS3_BUCKET=main-bucket\n" LEGACY,
		         by_type[i].db_type);
		CHECK_STR(bucket_of(text, got, sizeof(got)), "");
		CHECK_STR(got, "main-bucket");
	}
	CHECK_STR(
	    bucket_of("DB_TYPE=sqlite\nS3_BUCKET=file:///srv/lake\n" LEGACY, got, sizeof(got)), "");
	CHECK_STR(got, "file:///srv/lake");

	/* S3_BUCKET unset: the source's own legacy key, aliases included. */
	for (size_t i = 0; i < sizeof(by_type) / sizeof(by_type[0]); i++) {
		snprintf(text, sizeof(text), "DB_TYPE=%s\n" LEGACY, by_type[i].db_type);
		CHECK_STR(bucket_of(text, got, sizeof(got)), "");
		CHECK_STR(got, by_type[i].bucket);
	}
	/* S3_BUCKET set but empty counts as unset. */
	CHECK_STR(bucket_of("DB_TYPE=postgresql\nS3_BUCKET=\nS3_BUCKET_MS2=ms2-bucket\n", got,
	                    sizeof(got)),
	          "");
	CHECK_STR(got, "ms2-bucket");

	/* Only another source's legacy key: not used. */
	CHECK_STR(bucket_of("DB_TYPE=mysql\nS3_BUCKET_MS2=ms2-bucket\nS3_BUCKET_MS3=ms3-bucket\n",
	                    got, sizeof(got)),
	          unset);
	CHECK_STR(got, "");
	CHECK_STR(bucket_of("DB_TYPE=postgresql\nS3_BUCKET_MS1=ms1-bucket\n", got, sizeof(got)),
	          unset);
	CHECK_STR(bucket_of("DB_TYPE=mongodb\nS3_BUCKET_MS2=ms2-bucket\n", got, sizeof(got)),
	          unset);
	CHECK_STR(bucket_of("DB_TYPE=mysql\nS3_BUCKET_MS1=\n", got, sizeof(got)), unset);

	/* SQLite has no legacy key; no DB_TYPE reads none either. */
	CHECK_STR(bucket_of("DB_TYPE=sqlite\n" LEGACY, got, sizeof(got)), unset);
	CHECK_STR(bucket_of(LEGACY, got, sizeof(got)), unset);
	CHECK_STR(bucket_of("S3_BUCKET=main-bucket\n", got, sizeof(got)), "");
	CHECK_STR(got, "main-bucket");

	/* Nothing at all. */
	CHECK_STR(bucket_of("DB_TYPE=mysql\n", got, sizeof(got)), unset);
	CHECK_STR(bucket_of("", got, sizeof(got)), unset);
}

int main(void)
{
	test_legacy_keys();
	test_bucket();
	return test_done();
}
