/*
 * test_incremental.c - LOAD_MODE=incremental's rules (collector/incremental.h):
 * key syntax, cursor column choice and validation per cursor type, the NULL
 * rule, primary keys, and the range WHERE clauses per dialect.
 */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "incremental.h"
#include "testlib.h"

static struct config *cfg_of(const char *text)
{
	struct ierr e;
	struct config *c = config_parse_text(text, "t.env", NULL, false, &e);

	if (c == NULL)
		fprintf(stderr, "config: %s\n", e.msg);
	return c;
}

static const char *settings_error(const char *text)
{
	static struct ierr e;
	struct incr_settings s;
	struct config *c = cfg_of(text);
	int rc;

	ierr_clear(&e);
	rc = incr_settings_from(c, &s, &e);
	config_free(c);
	return rc == 0 ? "" : e.msg;
}

static void test_settings(void)
{
	CHECK_STR(
	    settings_error("LOAD_MODE=incremental\n"),
	    "LOAD_MODE=incremental: set INCREMENTAL_COLUMN or INCREMENTAL_COLUMNS (the cursor "
	    "column of the tables)");
	CHECK_STR(settings_error("LOAD_MODE=incremental\nINCREMENTAL_COLUMNS=orders\n"),
	          "INCREMENTAL_COLUMNS: \"orders\" is not table:column");
	CHECK_STR(settings_error("PRIMARY_KEYS=t:\n"), "PRIMARY_KEYS: \"t:\" is not table:col+col");
	CHECK_STR(settings_error("LOAD_MODE=incremental\nINCREMENTAL_COLUMNS=a:x, s.b:y\n"), "");
	CHECK_STR(settings_error("LOAD_MODE=snapshot\n"), "");
}

static void test_lookup(void)
{
	char out[64];

	CHECK(incr_list_lookup("a:x, s.b:y ,c:p+q", "s.b", out, sizeof(out)));
	CHECK_STR(out, "y");
	CHECK(incr_list_lookup("a:x, s.b:y ,c:p+q", "c", out, sizeof(out)));
	CHECK_STR(out, "p+q");
	CHECK(!incr_list_lookup("a:x", "b", out, sizeof(out)));
	CHECK(!incr_list_lookup("ab:x", "a", out, sizeof(out)));
}

static void test_kinds(void)
{
	static const struct {
		const char *db, *type;
		enum cursor_kind k;
	} cases[] = {
	    {"sqlite", "INTEGER", CK_INT},
	    {"sqlite", "BIGINT", CK_INT},
	    {"sqlite", "VARCHAR(10)", CK_STRING},
	    {"sqlite", "TEXT", CK_STRING},
	    {"sqlite", "DATETIME", CK_DATETIME},
	    {"sqlite", "TIMESTAMP", CK_DATETIME},
	    {"sqlite", "DATE", CK_DATE},
	    {"sqlite", "DECIMAL(10,2)", CK_DECIMAL},
	    {"sqlite", "REAL", CK_NONE},
	    {"sqlite", "DOUBLE", CK_NONE},
	    {"sqlite", "BLOB", CK_NONE},
	    {"sqlite", "", CK_NONE},
	    {"sqlite", "BOOLEAN", CK_NONE},
	    {"postgresql", "bigint", CK_INT},
	    {"postgresql", "smallint", CK_INT},
	    {"postgresql", "numeric(12,2)", CK_DECIMAL},
	    {"postgresql", "numeric", CK_DECIMAL},
	    {"postgresql", "date", CK_DATE},
	    {"postgresql", "timestamp with time zone", CK_DATETIME},
	    {"postgresql", "timestamp(3) without time zone", CK_DATETIME},
	    {"postgresql", "text", CK_STRING},
	    {"postgresql", "character varying(20)", CK_STRING},
	    {"postgresql", "double precision", CK_NONE},
	    {"postgresql", "boolean", CK_NONE},
	    {"postgresql", "jsonb", CK_NONE},
	    {"postgresql", "uuid", CK_NONE},
	    {"mysql", "int", CK_INT},
	    {"mysql", "int(11)", CK_INT},
	    {"mysql", "bigint(20) unsigned", CK_INT},
	    {"mysql", "tinyint(4)", CK_INT},
	    {"mysql", "tinyint(1)", CK_NONE}, /* BOOLEAN */
	    {"mysql", "tinyint(1) unsigned", CK_NONE},
	    {"mysql", "year(4)", CK_INT},
	    {"mysql", "decimal(12,2)", CK_DECIMAL},
	    {"mysql", "date", CK_DATE},
	    {"mysql", "datetime(6)", CK_DATETIME},
	    {"mysql", "timestamp", CK_DATETIME},
	    {"mysql", "varchar(40)", CK_STRING},
	    {"mysql", "char(3)", CK_STRING},
	    {"mysql", "text", CK_STRING},
	    {"mysql", "longtext", CK_NONE}, /* MariaDB's JSON */
	    {"mysql", "varbinary(16)", CK_NONE},
	    {"mysql", "double", CK_NONE},
	    {"mysql", "float", CK_NONE},
	    {"mysql", "bit(1)", CK_NONE},
	    {"mysql", "enum('a','b')", CK_NONE},
	    {"mysql", "time(3)", CK_NONE},
	    {"mysql", "json", CK_NONE},
	    {"mysql", "integer_like", CK_NONE},
	    {"mongodb", "int32", CK_INT},
	    {"mongodb", "int64", CK_INT},
	    {"mongodb", "decimal128", CK_DECIMAL},
	    {"mongodb", "date", CK_DATETIME},
	    {"mongodb", "string", CK_STRING},
	    {"mongodb", "objectId", CK_STRING},
	    {"mongodb", "double", CK_NONE},
	    {"mongodb", "bool", CK_NONE},
	    {"mongodb", "timestamp", CK_NONE},
	    {"mongodb", "mixed(date,string)", CK_NONE},
	    {"oracle", "int", CK_NONE},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum cursor_kind k = incr_cursor_kind(cases[i].db, cases[i].type);

		if (k != cases[i].k)
			fprintf(stderr, "kind of %s %s: %s\n", cases[i].db, cases[i].type,
			        incr_kind_name(k));
		CHECK(k == cases[i].k);
	}
}

/* The plan of table t (id INTEGER pk, upd <type> [nullable], v TEXT). */
static const char *plan_error(const char *cfgtext, const char *upd_type, bool nullable, bool pk,
                              struct incr_table *out)
{
	static struct ierr e;
	struct incr_settings s;
	struct table_schema sc = {0};
	struct config *c = cfg_of(cfgtext);
	int rc;

	ierr_clear(&e);
	table_schema_add_column(&sc, "id", 2, "INTEGER", false);
	table_schema_add_column(&sc, "upd", 3, upd_type, nullable);
	table_schema_add_column(&sc, "v", 1, "TEXT", true);
	if (pk)
		table_schema_add_pk(&sc, "id");
	rc = incr_settings_from(c, &s, &e);
	if (rc == 0)
		rc = incr_plan_table(&s, "sqlite", "t", &sc, out, &e);
	table_schema_free(&sc);
	config_free(c);
	return rc == 0 ? "" : e.msg;
}

static void test_plans(void)
{
	struct incr_table t;
	const char *inc = "LOAD_MODE=incremental\nINCREMENTAL_COLUMN=upd\n";

	CHECK_STR(plan_error(inc, "INTEGER", false, true, &t), "");
	CHECK(t.incremental && t.kind == CK_INT && strcmp(t.column, "upd") == 0);
	CHECK_STR(buf_cstr(&t.key_json), "[\"id\"]");
	incr_table_free(&t);
	/* Not incremental at all: every table a snapshot. */
	CHECK_STR(plan_error("INCREMENTAL_COLUMN=upd\n", "INTEGER", false, true, &t), "");
	CHECK(!t.incremental);
	/* The global column missing from a table: a snapshot, not an error. */
	CHECK_STR(plan_error("LOAD_MODE=incremental\nINCREMENTAL_COLUMN=nope\n", "INTEGER", false,
	                     true, &t),
	          "");
	CHECK(!t.incremental);
	/* ... but named for the table: an error naming both. */
	CHECK_STR(plan_error("LOAD_MODE=incremental\nINCREMENTAL_COLUMNS=t:nope\n", "INTEGER",
	                     false, true, &t),
	          "INCREMENTAL_COLUMNS: table \"t\" has no column \"nope\"");
	CHECK_STR(plan_error(inc, "REAL", false, true, &t),
	          "table \"t\": cursor column \"upd\" has type \"REAL\", which cannot be ordered "
	          "exactly (cursors: integers, decimals, dates, date-times, strings)");
	CHECK_STR(plan_error(inc, "INTEGER", true, true, &t),
	          "table \"t\": cursor column \"upd\" may be NULL; declare it NOT NULL or set "
	          "INCREMENTAL_NULLS=snapshot|skip (README \"Incremental extraction\")");
	CHECK_STR(plan_error("LOAD_MODE=incremental\nINCREMENTAL_COLUMN=upd\n"
	                     "INCREMENTAL_NULLS=snapshot\n",
	                     "DATETIME", true, true, &t),
	          "");
	CHECK(t.incremental && t.nullable && t.kind == CK_DATETIME);
	incr_table_free(&t);
	CHECK_STR(plan_error(inc, "INTEGER", false, false, &t),
	          "table \"t\": incremental (cursor column \"upd\") but no primary key at the "
	          "source; name one in PRIMARY_KEYS (t:col+col), <table>_current keeps one row "
	          "per key");
	CHECK_STR(plan_error("LOAD_MODE=incremental\nINCREMENTAL_COLUMN=upd\nPRIMARY_KEYS=t:v+id\n",
	                     "INTEGER", false, false, &t),
	          "");
	CHECK_STR(buf_cstr(&t.key_json), "[\"v\",\"id\"]");
	incr_table_free(&t);
	CHECK_STR(plan_error("LOAD_MODE=incremental\nINCREMENTAL_COLUMN=upd\nPRIMARY_KEYS=t:zz\n",
	                     "INTEGER", false, false, &t),
	          "PRIMARY_KEYS: table \"t\" has no column \"zz\"");
}

static const char *where(enum incr_dialect d, bool snapshot, bool after, bool through)
{
	static struct buf b;

	buf_reset(&b);
	incr_where_sql(d, "\"c\"", "timestamp with time zone", snapshot, after, through, &b);
	return buf_cstr(&b);
}

static void test_where(void)
{
	CHECK_STR(where(DIALECT_SQLITE, false, true, true), " WHERE \"c\" > ?1 AND \"c\" <= ?2");
	CHECK_STR(where(DIALECT_SQLITE, false, false, true), " WHERE \"c\" <= ?2");
	CHECK_STR(where(DIALECT_SQLITE, true, false, true),
	          " WHERE (\"c\" <= ?2 OR \"c\" IS NULL)");
	CHECK_STR(where(DIALECT_SQLITE, true, false, false), " WHERE \"c\" IS NULL");
	CHECK_STR(where(DIALECT_POSTGRES, false, true, true),
	          " WHERE \"c\" > current_setting('ingesta.after')::timestamp with time zone AND "
	          "\"c\" <= current_setting('ingesta.through')::timestamp with time zone");
	CHECK_STR(where(DIALECT_POSTGRES, true, false, true),
	          " WHERE (\"c\" <= current_setting('ingesta.through')::timestamp with time zone "
	          "OR \"c\" IS NULL)");
}

static const char *mysql_expr(const char *type, const char *cs, const char *coll)
{
	static struct buf b;

	buf_reset(&b);
	if (incr_mysql_value_sql(type, cs, coll, &b) != 0)
		return "(refused)";
	return buf_cstr(&b);
}

static void test_mysql_values(void)
{
	struct buf b = {0};

	CHECK_STR(mysql_expr("int(11)", "", ""), "CAST(? AS SIGNED)");
	CHECK_STR(mysql_expr("bigint(20) unsigned", "", ""), "CAST(? AS UNSIGNED)");
	CHECK_STR(mysql_expr("decimal(12,2)", "", ""), "CAST(? AS DECIMAL(12,2))");
	CHECK_STR(mysql_expr("decimal(12,2) unsigned", "", ""), "CAST(? AS DECIMAL(12,2))");
	CHECK_STR(mysql_expr("date", "", ""), "CAST(? AS DATE)");
	CHECK_STR(mysql_expr("datetime(6)", "", ""), "CAST(? AS DATETIME(6))");
	CHECK_STR(mysql_expr("timestamp", "", ""), "CAST(? AS DATETIME)");
	CHECK_STR(mysql_expr("varchar(20)", "utf8mb4", "utf8mb4_bin"),
	          "CONVERT(? USING utf8mb4) COLLATE utf8mb4_bin");
	CHECK_STR(mysql_expr("varchar(20)", "utf8mb4", "x'; DROP"), "(refused)");
	CHECK_STR(mysql_expr("varchar(20)", "", ""), "(refused)");
	CHECK_STR(mysql_expr("double", "", ""), "(refused)");
	incr_where_sql(DIALECT_MYSQL, "`c`", "CAST(? AS DATETIME(6))", false, true, true, &b);
	CHECK_STR(buf_cstr(&b), " WHERE `c` > CAST(@ingesta_after AS DATETIME(6)) AND `c` <= "
	                        "CAST(@ingesta_through AS DATETIME(6))");
	buf_reset(&b);
	incr_where_sql(DIALECT_MYSQL, "`c`", "CAST(? AS SIGNED)", true, false, true, &b);
	CHECK_STR(buf_cstr(&b), " WHERE (`c` <= CAST(@ingesta_through AS SIGNED) OR `c` IS NULL)");
	buf_free(&b);
}

int main(void)
{
	test_settings();
	test_lookup();
	test_kinds();
	test_plans();
	test_where();
	test_mysql_values();
	return test_done();
}
