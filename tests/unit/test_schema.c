/*
 * test_schema.c - source schemas (collector/schema.h): the canonical JSON,
 * MongoDB's inference rules, the schema stored by the partition commit
 * (zero-row tables included), and a version 1 spool migrated by this binary
 * with its rows kept.
 */
#include <inttypes.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "schema.h"
#include "schema_sql.h"
#include "spool.h"
#include "testlib.h"
#include "writer.h"

static char root[256];

/* The JSON of a schema, as a malloc'd string. */
static char *json_of(const struct table_schema *s)
{
	struct buf b = {0};

	table_schema_json(s, &b);
	buf_cstr(&b);
	return b.data;
}

static void test_json(void)
{
	struct table_schema s = {0};
	char *j;

	j = json_of(&s);
	CHECK_STR(j, "{\"columns\":[],\"primary_key\":[],\"inferred\":false}");
	free(j);

	table_schema_add_column(&s, "id", 2, "integer", false);
	table_schema_add_column(&s, "na\"me\\x", 8, "character varying(10)", true);
	table_schema_add_column(&s, "tab\there\n", 9, "enum('a','b')", true);
	table_schema_add_column(&s, "é日本", strlen("é日本"), "text[]", true);
	table_schema_add_pk(&s, "id");
	table_schema_add_pk(&s, "na\"me\\x");
	j = json_of(&s);
	CHECK_STR(j, "{\"columns\":[{\"name\":\"id\",\"type\":\"integer\",\"nullable\":false},"
	             "{\"name\":\"na\\\"me\\\\x\",\"type\":\"character varying(10)\","
	             "\"nullable\":true},"
	             "{\"name\":\"tab\\there\\n\",\"type\":\"enum('a','b')\",\"nullable\":true},"
	             "{\"name\":\"é日本\",\"type\":\"text[]\",\"nullable\":true}],"
	             "\"primary_key\":[\"id\",\"na\\\"me\\\\x\"],\"inferred\":false}");
	free(j);
	/* The name is n bytes, NUL included or not. */
	table_schema_free(&s);
	table_schema_add_column(&s, "abcdef", 3, "x", false);
	s.inferred = true;
	j = json_of(&s);
	CHECK_STR(j, "{\"columns\":[{\"name\":\"abc\",\"type\":\"x\",\"nullable\":false}],"
	             "\"primary_key\":[],\"inferred\":true}");
	free(j);
	table_schema_free(&s);
	CHECK(s.ncols == 0 && s.npk == 0 && s.cols == NULL);
}

struct fv {
	const char *name;
	enum infer_type t;
};

/* Feed documents: each a NULL-terminated list of fields. */
static char *infer(const struct fv *const *docs, size_t ndocs)
{
	struct schema_infer inf = {0};
	struct table_schema s = {0};
	char *j;

	for (size_t d = 0; d < ndocs; d++) {
		schema_infer_doc(&inf);
		for (const struct fv *f = docs[d]; f->name; f++)
			schema_infer_field(&inf, f->name, strlen(f->name), f->t);
	}
	schema_infer_result(&inf, &s);
	schema_infer_free(&inf);
	j = json_of(&s);
	table_schema_free(&s);
	return j;
}

#define COL(n, t, nl) "{\"name\":\"" n "\",\"type\":\"" t "\",\"nullable\":" nl "}"

static void test_type_names(void)
{
	static const char *const want[IT_COUNT] = {"null",      "double",
	                                           "string",    "object",
	                                           "array",     "binary",
	                                           "objectId",  "bool",
	                                           "date",      "regex",
	                                           "dbPointer", "javascript",
	                                           "symbol",    "javascriptWithScope",
	                                           "int32",     "timestamp",
	                                           "int64",     "decimal128",
	                                           "minKey",    "maxKey"};

	for (int t = 0; t < IT_COUNT; t++)
		CHECK_STR(schema_infer_type_name((enum infer_type)t), want[t]);
	CHECK_STR(schema_infer_type_name(IT_COUNT), "string");
}

static void test_infer_rules(void)
{
	/* Three documents, fields in first-seen order across them. */
	static const struct fv d1[] = {{"_id", IT_OBJECTID}, {"a", IT_INT32},  {"b", IT_NULL},
	                               {"c", IT_INT32},      {"d", IT_STRING}, {"e", IT_INT32},
	                               {"g", IT_DECIMAL128}, {"h", IT_NULL},   {"i", IT_DATE},
	                               {NULL, IT_NULL}};
	static const struct fv d2[] = {{"_id", IT_OBJECTID}, {"a", IT_INT64}, {"b", IT_INT32},
	                               {"c", IT_DOUBLE},     {"d", IT_INT32}, {"e", IT_INT64},
	                               {"g", IT_DOUBLE},     {"h", IT_NULL},  {"i", IT_DATE},
	                               {"late", IT_BOOL},    {NULL, IT_NULL}};
	static const struct fv d3[] = {{"_id", IT_OBJECTID}, {"a", IT_INT32},   {"b", IT_INT32},
	                               {"c", IT_INT64},      {"e", IT_DOUBLE},  {"g", IT_DOUBLE},
	                               {"i", IT_DATE},       {"late", IT_BOOL}, {NULL, IT_NULL}};
	const struct fv *docs[] = {d1, d2, d3};
	char *j = infer(docs, 3);

	CHECK_STR(
	    j,
	    "{\"columns\":[" COL("_id", "objectId", "false") "," COL("a", "int64", "false") "," COL("b", "int32", "true") "," COL(
	        "c", "double",
	        "false") "," COL("d", "string",
	                         "true") "," COL("e", "double",
	                                         "false") "," COL("g", "string",
	                                                          "false") "," COL("h", "null",
	                                                                           "true") "," COL("i",
	                                                                                           "date",
	                                                                                           "false") "," COL("late",
	                                                                                                            "bool",
	                                                                                                            "true") "],\"primary_key\":[\"_id\"],\"inferred\":true}");
	free(j);
}

static void test_infer_order_independent(void)
{
	/* double then int32 = int32 then double; int64 + double = double; any
	 * third type over a numeric merge = string; object + array = string. */
	static const struct fv a1[] = {
	    {"x", IT_DOUBLE}, {"y", IT_INT64}, {"z", IT_INT32}, {"o", IT_OBJECT}, {NULL, IT_NULL}};
	static const struct fv a2[] = {
	    {"x", IT_INT32}, {"y", IT_DOUBLE}, {"z", IT_INT64}, {"o", IT_ARRAY}, {NULL, IT_NULL}};
	static const struct fv a3[] = {{"z", IT_BOOL}, {NULL, IT_NULL}};
	const struct fv *fwd[] = {a1, a2, a3};
	const struct fv *rev[] = {a3, a2, a1};
	char *j1 = infer(fwd, 3);
	char *j2 = infer(rev, 3);

	CHECK_STR(
	    j1,
	    "{\"columns\":[" COL("x", "double", "true") "," COL("y", "double", "true") "," COL(
	        "z", "string", "false") "," COL("o", "string",
	                                        "true") "],"
	                                                "\"primary_key\":[],\"inferred\":true}");
	CHECK_STR(
	    j2, "{\"columns\":[" COL("z", "string", "false") "," COL("x", "double", "true") "," COL(
	            "y", "double", "true") "," COL("o", "string",
	                                           "true") "],"
	                                                   "\"primary_key\":[],\"inferred\":true}");
	free(j1);
	free(j2);
}

static void test_infer_edges(void)
{
	struct schema_infer inf = {0};
	struct table_schema s = {0};
	char *j;
	char name[32];

	/* No document: no column, no key. */
	j = infer(NULL, 0);
	CHECK_STR(j, "{\"columns\":[],\"primary_key\":[],\"inferred\":true}");
	free(j);

	/* A key twice in one document counts once for presence. */
	schema_infer_doc(&inf);
	schema_infer_field(&inf, "k", 1, IT_INT32);
	schema_infer_field(&inf, "k", 1, IT_INT32);
	schema_infer_doc(&inf);
	schema_infer_field(&inf, "j", 1, IT_INT32);
	/* Names are n bytes: "k" and "kk" differ. */
	schema_infer_field(&inf, "kk", 2, IT_STRING);
	schema_infer_result(&inf, &s);
	j = json_of(&s);
	CHECK_STR(j,
	          "{\"columns\":[" COL("k", "int32", "true") "," COL("j", "int32", "true") "," COL(
	              "kk", "string", "true") "],\"primary_key\":[],\"inferred\":true}");
	free(j);
	table_schema_free(&s);
	schema_infer_free(&inf);

	/* Many fields: the hash table grows and keeps first-seen order. */
	for (int d = 0; d < 2; d++) {
		schema_infer_doc(&inf);
		for (int i = 0; i < 5000; i++) {
			snprintf(name, sizeof(name), "f%d", d == 0 ? i : 4999 - i);
			schema_infer_field(&inf, name, strlen(name), d == 0 ? IT_INT32 : IT_INT64);
		}
	}
	schema_infer_result(&inf, &s);
	CHECK(s.ncols == 5000);
	CHECK(s.ncols == 5000 && strcmp(s.cols[0].name, "f0") == 0 &&
	      strcmp(s.cols[4999].name, "f4999") == 0 && strcmp(s.cols[17].type, "int64") == 0 &&
	      !s.cols[17].nullable);
	table_schema_free(&s);
	schema_infer_free(&inf);

	/* Past the cap, new fields are counted and left out. */
	schema_infer_doc(&inf);
	for (int i = 0; i < SCHEMA_INFER_MAX_FIELDS + 10; i++) {
		snprintf(name, sizeof(name), "g%d", i);
		schema_infer_field(&inf, name, strlen(name), IT_STRING);
	}
	schema_infer_field(&inf, "g0", 2, IT_STRING); /* known: still counted in */
	schema_infer_result(&inf, &s);
	CHECK(s.ncols == SCHEMA_INFER_MAX_FIELDS);
	CHECK(inf.dropped_fields == 10);
	table_schema_free(&s);
	schema_infer_free(&inf);
}

/* ------------------------------------------------------------ spool */

static int64_t q(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	int64_t v = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -2;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_type(st, 0) == SQLITE_NULL ? -3 : sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* First column of the first row as text ("(null)" for NULL), malloc'd. */
static char *qs(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	char *v = NULL;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return strdup("(prepare failed)");
	if (sqlite3_step(st) == SQLITE_ROW)
		v = strdup(sqlite3_column_type(st, 0) == SQLITE_NULL
		               ? "(null)"
		               : (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return v ? v : strdup("(no row)");
}

static struct segment_settings settings(void)
{
	struct segment_settings s = {
	    .key_template = "{table}/{run_id}-{seq}{ext}",
	    .key_prefix = "",
	    .source = "test",
	    .compress = true,
	    .zstd_level = 3,
	    .max_bytes = 1 << 20,
	    .max_rows = 2,
	};
	return s;
}

static int commit_table(struct spool *sp, struct spool_run *run, const char *table, int rows,
                        const char *schema_json, bool two_args)
{
	struct norm_opts o = {0};
	struct segment_settings set = settings();
	struct ierr e;
	struct table_writer *w = table_writer_new_spool(sp, run, table, &o, &set, &e);
	int rc = 0;

	if (w == NULL)
		return -1;
	for (int i = 0; i < rows && rc == 0; i++) {
		buf_printf(table_writer_row_begin(w), "{\"id\":%d}", i);
		rc = table_writer_row_end(w, &e);
	}
	if (rc == 0)
		rc =
		    two_args ? table_writer_commit(w, &e) : table_writer_commit(w, schema_json, &e);
	if (rc != 0)
		fprintf(stderr, "commit %s: %s\n", table, e.msg);
	table_writer_free(w);
	return rc;
}

static void test_partition_schema(void)
{
	static const char sch[] =
	    "{\"columns\":[{\"name\":\"id\",\"type\":\"integer\","
	    "\"nullable\":false}],\"primary_key\":[\"id\"],\"inferred\":false}";
	char dir[300];
	struct ierr e;
	struct spool *sp;
	struct spool_run run;
	char *v;

	snprintf(dir, sizeof(dir), "%s/commit", root);
	sp = spool_open(dir, SPOOL_ROLE_COLLECTOR, &e);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	CHECK(spool_run_begin(sp, "test", "sqlite", "file:///tmp/x", &run, &e) == 0);
	CHECK(commit_table(sp, &run, "full", 5, sch, false) == 0);
	CHECK(commit_table(sp, &run, "empty", 0, sch, false) == 0);
	CHECK(commit_table(sp, &run, "noschema", 1, NULL, false) == 0);
	CHECK(commit_table(sp, &run, "old_caller", 1, NULL, true) == 0);

	v = qs(spool_db(sp), "SELECT schema_json FROM partitions WHERE table_name='full'");
	CHECK_STR(v, sch);
	free(v);
	CHECK(q(spool_db(sp), "SELECT segments FROM partitions WHERE table_name='full'") == 3);
	/* Zero rows: the partition completes with 0 segments and its schema. */
	v = qs(spool_db(sp), "SELECT state || ' ' || segments || ' ' || rows || ' ' || schema_json "
	                     "FROM partitions WHERE table_name='empty'");
	CHECK_STR(v, "complete 0 0 "
	             "{\"columns\":[{\"name\":\"id\",\"type\":\"integer\","
	             "\"nullable\":false}],\"primary_key\":[\"id\"],\"inferred\":false}");
	free(v);
	CHECK(q(spool_db(sp), "SELECT count(*) FROM segments WHERE table_name='empty'") == 0);
	v = qs(spool_db(sp), "SELECT schema_json FROM partitions WHERE table_name='noschema'");
	CHECK_STR(v, "(null)");
	free(v);
	v = qs(spool_db(sp), "SELECT state FROM partitions WHERE table_name='old_caller'");
	CHECK_STR(v, "complete");
	free(v);
	CHECK(spool_run_end(sp, &run, "complete", 4, 7, NULL, &e) == 0);
	spool_close(sp);
}

/* A spool as a version-1 binary left it: 001 only, user_version 1, with a
 * run, an uploaded partition with its manifest and one still to upload. */
static void make_v1_spool(const char *dir)
{
	char path[400];
	sqlite3 *db;
	static const char rows_sql[] =
	    "INSERT INTO runs (run_id, source, db_type, bucket, started_at, finished_at, state, "
	    "tables, rows) VALUES ('20250101T000000Z-00000001', 'legacy', 'sqlite', "
	    "'file:///tmp/b', 1735689600000, 1735689601000, 'complete', 2, 3);"
	    "INSERT INTO partitions (id, run_id, table_name, state, rows, raw_bytes, bytes, "
	    "segments, manifest_key, manifest_state, completed_at) VALUES "
	    "(1, '20250101T000000Z-00000001', 'users', 'complete', 2, 20, 30, 1, "
	    " 'users/_manifest-20250101T000000Z-00000001.json', 'written', 1735689601000),"
	    "(2, '20250101T000000Z-00000001', 'orders', 'complete', 1, 10, 15, 1, NULL, 'none', "
	    " 1735689601000);"
	    "INSERT INTO segments (id, partition_id, run_id, source, table_name, seq, path, "
	    "bucket, "
	    "key, rows, raw_bytes, bytes, sha256, md5, state, created_at, sealed_at, uploaded_at, "
	    "file_deleted_at) VALUES "
	    "(1, 1, '20250101T000000Z-00000001', 'legacy', 'users', 1, "
	    " 'data/20250101T000000Z-00000001.1-00001.json.zst', 'file:///tmp/b', "
	    " 'users/20250101T000000Z-00000001-00001.json.zst', 2, 20, 30, 'aa', 'bb', 'uploaded', "
	    " 1735689600500, 1735689601000, 1735689602000, 1735689602000),"
	    "(2, 2, '20250101T000000Z-00000001', 'legacy', 'orders', 1, "
	    " 'data/20250101T000000Z-00000001.2-00001.json.zst', 'file:///tmp/b', "
	    " 'orders/20250101T000000Z-00000001-00001.json.zst', 1, 10, 15, 'cc', 'dd', 'sealed', "
	    " 1735689600500, 1735689601000, NULL, NULL);"
	    "INSERT INTO counters (name, value) VALUES ('uploads', 1);";

	mkdir(dir, 0700);
	snprintf(path, sizeof(path), "%s/data", dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/spool.db", dir);
	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	CHECK(sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL) == SQLITE_OK);
	CHECK(sqlite3_exec(db, schema_migrations[0], NULL, NULL, NULL) == SQLITE_OK);
	CHECK(sqlite3_exec(db, "PRAGMA user_version = 1", NULL, NULL, NULL) == SQLITE_OK);
	CHECK(sqlite3_exec(db, rows_sql, NULL, NULL, NULL) == SQLITE_OK);
	CHECK(q(db, "SELECT count(*) FROM pragma_table_info('partitions') WHERE "
	            "name='schema_json'") == 0);
	sqlite3_close(db);
	/* The sealed segment still has its file (recovery would quarantine a
	 * recorded file that vanished). */
	snprintf(path, sizeof(path), "%s/data/20250101T000000Z-00000001.2-00001.json.zst", dir);
	fclose(fopen(path, "w"));
}

static void test_migrate_v1(void)
{
	char dir[300];
	struct ierr e;
	struct spool *sp;
	sqlite3 *db;
	char *v;

	snprintf(dir, sizeof(dir), "%s/v1", root);
	make_v1_spool(dir);
	sp = spool_open(dir, SPOOL_ROLE_COLLECTOR, &e);
	CHECK(sp != NULL);
	if (sp == NULL) {
		fprintf(stderr, "open v1 spool: %s\n", e.msg);
		return;
	}
	db = spool_db(sp);
	CHECK(q(db, "PRAGMA user_version") == SCHEMA_VERSION);
	CHECK(q(db, "SELECT count(*) FROM runs") == 1);
	CHECK(q(db, "SELECT count(*) FROM partitions") == 2);
	CHECK(q(db, "SELECT count(*) FROM segments") == 2);
	CHECK(q(db, "SELECT value FROM counters WHERE name='uploads'") == 1);
	v = qs(db, "SELECT group_concat(table_name || ':' || state || ':' || rows || ':' || "
	           "manifest_state || ':' || coalesce(schema_json, 'NULL'), ' ') FROM "
	           "(SELECT * FROM partitions ORDER BY id)");
	CHECK_STR(v, "users:complete:2:written:NULL orders:complete:1:none:NULL");
	free(v);
	v = qs(db, "SELECT group_concat(state || ':' || key, ' ') FROM (SELECT * FROM segments "
	           "ORDER BY id)");
	CHECK_STR(v, "uploaded:users/20250101T000000Z-00000001-00001.json.zst "
	             "sealed:orders/20250101T000000Z-00000001-00001.json.zst");
	free(v);
	/* 002's own rule: partitions with their manifest predate the commit log. */
	v = qs(db, "SELECT group_concat(commit_state, ' ') FROM (SELECT * FROM partitions ORDER "
	           "BY id)");
	CHECK_STR(v, "written none");
	free(v);
	/* A new run on the migrated spool stores its schema. */
	{
		struct spool_run run;

		CHECK(spool_run_begin(sp, "test", "sqlite", "file:///tmp/b", &run, &e) == 0);
		CHECK(commit_table(sp, &run, "users", 1, "{\"columns\":[]}", false) == 0);
		CHECK(spool_run_end(sp, &run, "complete", 1, 1, NULL, &e) == 0);
	}
	CHECK(q(db, "SELECT count(*) FROM partitions WHERE schema_json = '{\"columns\":[]}'") == 1);
	spool_close(sp);
	/* Opening again is a no-op. */
	sp = spool_open(dir, SPOOL_ROLE_OPERATOR, &e);
	CHECK(sp != NULL);
	if (sp != NULL) {
		CHECK(q(spool_db(sp), "PRAGMA user_version") == SCHEMA_VERSION);
		CHECK(q(spool_db(sp), "SELECT count(*) FROM partitions") == 3);
		spool_close(sp);
	}
}

int main(void)
{
	char cmd[300];

	snprintf(root, sizeof(root), "/tmp/ingesta-test-schema-%d", (int)getpid());
	mkdir(root, 0700);
	test_json();
	test_type_names();
	test_infer_rules();
	test_infer_order_independent();
	test_infer_edges();
	test_partition_schema();
	test_migrate_v1();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", root);
	return test_done();
}
