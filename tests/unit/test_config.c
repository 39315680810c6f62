/*
 * test_config.c - every rule of the KEY=VALUE loader (config.h), including
 * each error message an operator may see.
 */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "testlib.h"

static struct config *parse(const char *text, struct ierr *e)
{
	return config_parse_text(text, "t.env", NULL, false, e);
}

/* The error message for text, or "" when it loads. */
static const char *error_of(const char *text)
{
	static struct ierr e;
	struct config *c;

	ierr_clear(&e);
	c = parse(text, &e);
	if (c) {
		config_free(c);
		return "";
	}
	return e.msg;
}

static void test_syntax(void)
{
	struct ierr e;
	struct config *c = parse("# comment\n"
	                         "\n"
	                         "  # indented comment\n"
	                         "DB_TYPE=mysql\n"
	                         "export MYSQL_HOST=db.internal\n"
	                         "MYSQL_USER = app \n"
	                         "MYSQL_PASSWORD='p#ss w\"rd'\n"
	                         "MYSQL_DATABASE=\"shop \\\"main\\\" \\$x\"\n"
	                         "S3_BUCKET=raw-ms1-data-bgc # trailing comment\n"
	                         "S3_PREFIX=a#b\n"
	                         "LOG_LEVEL=debug\r\n",
	                         &e);

	CHECK(c != NULL);
	if (c == NULL)
		return;
	CHECK_STR(config_str(c, "DB_TYPE"), "mysql");
	CHECK_STR(config_str(c, "MYSQL_HOST"), "db.internal");
	CHECK_STR(config_str(c, "MYSQL_USER"), "app");
	CHECK_STR(config_str(c, "MYSQL_PASSWORD"), "p#ss w\"rd");
	CHECK_STR(config_str(c, "MYSQL_DATABASE"), "shop \"main\" $x");
	CHECK_STR(config_str(c, "S3_BUCKET"), "raw-ms1-data-bgc");
	CHECK_STR(config_str(c, "S3_PREFIX"), "a#b");
	CHECK_STR(config_str(c, "LOG_LEVEL"), "debug");
	CHECK(config_is_set(c, "MYSQL_HOST"));
	CHECK(!config_is_set(c, "POSTGRES_HOST"));
	CHECK_STR(config_str(c, "POSTGRES_HOST"), "localhost");
	CHECK(config_int(c, "MYSQL_PORT") == 3306);
	CHECK(config_secrets(c)[0] != NULL && strcmp(config_secrets(c)[0], "p#ss w\"rd") == 0);
	config_free(c);
}

static void test_types(void)
{
	struct ierr e;
	struct config *c = parse("SPOOL_MAX_BYTES=1.5G\nSEGMENT_MAX_BYTES=512k\n"
	                         "INGESTION_INTERVAL=1h\nRETRY_BASE=250ms\nRETRY_CAP=2m\n"
	                         "ENABLE_PARTITIONING=false\nINCLUDE_VIEWS=YES\nMYSQL_PORT=13306\n"
	                         "MULTIPART_PART_SIZE=16MiB\n",
	                         &e);

	CHECK(c != NULL);
	if (c == NULL)
		return;
	CHECK(config_int(c, "SPOOL_MAX_BYTES") == 1610612736LL);
	CHECK(config_int(c, "SEGMENT_MAX_BYTES") == 524288);
	CHECK(config_int(c, "INGESTION_INTERVAL") == 3600000);
	CHECK(config_int(c, "RETRY_BASE") == 250);
	CHECK(config_int(c, "RETRY_CAP") == 120000);
	CHECK(config_int(c, "MULTIPART_PART_SIZE") == 16 * 1024 * 1024);
	CHECK(!config_bool(c, "ENABLE_PARTITIONING"));
	CHECK(config_bool(c, "INCLUDE_VIEWS"));
	CHECK(config_int(c, "MYSQL_PORT") == 13306);
	/* Defaults. */
	CHECK(config_int(c, "ZSTD_LEVEL") == 1);
	CHECK(config_int(c, "MULTIPART_THRESHOLD") == 64 * 1024 * 1024);
	CHECK(config_int(c, "UPLOAD_CONCURRENCY") == 4);
	CHECK(config_int(c, "RESCAN_INTERVAL") == 30000);
	config_free(c);
}

static void test_aliases_and_original_env(void)
{
	struct ierr e;
	/* The original deployment's .env, unchanged. */
	struct config *c =
	    parse("DB_TYPE=postgres\nPOSTGRES_HOST=10.0.0.5\nPOSTGRES_PORT=5432\n"
	          "POSTGRES_USER=etl\nPOSTGRES_PASSWORD=s3cret-pg\n"
	          "POSTGRES_DATABASE=billing\nMONGO_DB=inv\nMONGO_AUTH_SOURCE=admin\n"
	          "S3_BUCKET_MS1=raw-ms1-data-bgc\nS3_BUCKET_MS2=raw-ms2-data-bgc\n"
	          "S3_BUCKET_MS3=raw-ms3-data-bgc\nAWS_DEFAULT_REGION=eu-west-1\n"
	          "INGESTION_INTERVAL=3600\nENABLE_PARTITIONING=true\nLOG_LEVEL=INFO\n",
	          &e);

	CHECK(c != NULL);
	if (c == NULL) {
		fprintf(stderr, "%s\n", e.msg);
		return;
	}
	CHECK_STR(config_str(c, "POSTGRES_DB"), "billing");
	CHECK_STR(config_str(c, "MONGO_DATABASE"), "inv");
	CHECK_STR(config_str(c, "S3_BUCKET_MS2"), "raw-ms2-data-bgc");
	CHECK(config_warnings(c) == 0);
	config_free(c);
}

static void test_unknown_key_warns(void)
{
	struct ierr e;
	struct config *c = parse("SOME_OTHER_TOOL=1\nDB_TYPE=sqlite\n", &e);

	CHECK(c != NULL);
	if (c) {
		CHECK(config_warnings(c) == 1);
		config_free(c);
	}
}

static void test_errors(void)
{
	CHECK_STR(error_of("MYSQL_PORT=33o6\n"), "MYSQL_PORT: not a number: \"33o6\"");
	CHECK_STR(error_of("MYSQL_PORT=70000\n"), "MYSQL_PORT: 70000 is out of range 1..65535");
	CHECK_STR(error_of("ENABLE_PARTITIONING=maybe\n"),
	          "ENABLE_PARTITIONING: not a boolean: \"maybe\" (use true or false)");
	CHECK_STR(error_of("DB_TYPE=oracle\n"),
	          "DB_TYPE: \"oracle\" is not one of "
	          "mysql|mariadb|postgresql|postgres|mongodb|mongo|sqlite");
	CHECK_STR(error_of("SPOOL_MAX_BYTES=lots\n"),
	          "SPOOL_MAX_BYTES: not a size: \"lots\" (bytes, or a number with K, M, G)");
	CHECK_STR(error_of("INGESTION_INTERVAL=soon\n"),
	          "INGESTION_INTERVAL: not a duration: \"soon\" (seconds, or a number with ms, s, "
	          "m, h, d)");
	CHECK_STR(error_of("just some words\n"), "t.env:1: expected KEY=VALUE");
	CHECK_STR(error_of("\n\nMY-KEY=1\n"), "t.env:3: \"MY-KEY\" is not a valid key name");
	CHECK_STR(error_of("MYSQL_PASSWORD='abc\n"), "t.env:1: unterminated single quote");
	CHECK_STR(error_of("MYSQL_PASSWORD=\"abc\n"), "t.env:1: unterminated double quote");
	CHECK_STR(error_of("MYSQL_USER=\"a\" b\n"),
	          "t.env:1: unexpected text after the closing quote");
	/* A bad value of a secret key never shows the value. */
	CHECK_STR(error_of("MONGO_TLS=hunter2hunter2\n"),
	          "MONGO_TLS: not a boolean: \"hunter2hunter2\" (use true or false)");
	CHECK_STR(error_of("ZSTD_LEVEL=0\n"), "ZSTD_LEVEL: 0 is out of range 1..19");
}

static void test_precedence(void)
{
	struct ierr e;
	const char *flags[] = {"MYSQL_HOST=from-flag", NULL};
	struct config *c;

	setenv("MYSQL_HOST", "from-env", 1);
	setenv("MYSQL_USER", "env-user", 1);
	c = config_parse_text("MYSQL_HOST=from-file\nMYSQL_USER=file-user\nMYSQL_DATABASE=f\n",
	                      "t.env", flags, true, &e);
	CHECK(c != NULL);
	if (c) {
		CHECK_STR(config_str(c, "MYSQL_HOST"), "from-flag");
		CHECK_STR(config_str(c, "MYSQL_USER"), "env-user");
		CHECK_STR(config_str(c, "MYSQL_DATABASE"), "f");
		config_free(c);
	}
	unsetenv("MYSQL_HOST");
	unsetenv("MYSQL_USER");
	/* A bad value from the environment names the key too. */
	setenv("UPLOAD_CONCURRENCY", "many", 1);
	c = config_parse_text("", "t.env", NULL, true, &e);
	CHECK(c == NULL);
	CHECK_STR(e.msg, "UPLOAD_CONCURRENCY: not a number: \"many\"");
	unsetenv("UPLOAD_CONCURRENCY");
	/* An unknown key given as a flag is an error, not a warning. */
	{
		const char *bad[] = {"NOPE=1", NULL};

		c = config_parse_text("", "t.env", bad, false, &e);
		CHECK(c == NULL);
		CHECK_STR(e.msg, "option: unknown configuration key NOPE");
	}
}

static void test_missing_file(void)
{
	struct ierr e;
	struct config *c = config_load("/nonexistent/ingesta.env", NULL, &e);

	CHECK(c == NULL);
	CHECK_STR(e.msg, "config /nonexistent/ingesta.env: No such file or directory");
	CHECK(e.code == IERR_CONFIG);
}

int main(void)
{
	test_syntax();
	test_types();
	test_aliases_and_original_env();
	test_unknown_key_warns();
	test_errors();
	test_precedence();
	test_missing_file();
	return test_done();
}
