/*
 * test_catalog.c - the Athena type mapping (every row of docs/TYPES.md
 * "Athena types"), Glue-safe names, the key template check, the union of
 * schemas across runs, a model read from a spool, and golden DDL, view SQL,
 * Glue TableInput and Presto view encoding for a small schema; the Glue
 * client's pure error classification.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <sqlite3.h>

#include "athena_types.h"
#include "catalog.h"
#include "glue.h"
#include "spool.h"
#include "testlib.h"

struct row {
	const char *db, *type, *mode, *want;
};

/* One line per mapping row (and the DECIMAL_MODE variants). */
static const struct row rows[] = {
    /* MySQL / MariaDB */
    {"mysql", "tinyint(4)", "exact", "tinyint"},
    {"mysql", "tinyint(1)", "exact", "tinyint"},
    {"mysql", "tinyint(3) unsigned", "exact", "smallint"},
    {"mysql", "smallint(6)", "exact", "smallint"},
    {"mysql", "smallint(5) unsigned", "exact", "int"},
    {"mysql", "mediumint(9)", "exact", "int"},
    {"mysql", "mediumint(8) unsigned", "exact", "int"},
    {"mysql", "int(11)", "exact", "int"},
    {"mysql", "int(10) unsigned", "exact", "bigint"},
    {"mysql", "int(10) unsigned zerofill", "exact", "bigint"},
    {"mysql", "bigint(20)", "exact", "bigint"},
    {"mysql", "bigint(20) unsigned", "exact", "decimal(20,0)"},
    {"mysql", "decimal(10,2)", "exact", "decimal(10,2)"},
    {"mysql", "decimal(38,10)", "exact", "decimal(38,10)"},
    {"mysql", "decimal(65,30)", "exact", "string"},
    {"mysql", "decimal(10,2) unsigned", "exact", "decimal(10,2)"},
    {"mysql", "decimal(10,2)", "double", "double"},
    {"mysql", "decimal(10,2)", "string", "string"},
    {"mysql", "float", "exact", "float"},
    {"mysql", "float(7,3)", "exact", "float"},
    {"mysql", "double", "exact", "double"},
    {"mysql", "double unsigned", "exact", "double"},
    {"mysql", "bit(1)", "exact", "bigint"},
    {"mysql", "bit(63)", "exact", "bigint"},
    {"mysql", "bit(64)", "exact", "decimal(20,0)"},
    {"mysql", "year(4)", "exact", "smallint"},
    {"mysql", "date", "exact", "date"},
    {"mysql", "datetime", "exact", "timestamp"},
    {"mysql", "datetime(6)", "exact", "timestamp"},
    {"mysql", "timestamp(3)", "exact", "timestamp"},
    {"mysql", "time(6)", "exact", "string"},
    {"mysql", "varchar(120)", "exact", "string"},
    {"mysql", "longtext", "exact", "string"},
    {"mysql", "enum('a','b)')", "exact", "string"},
    {"mysql", "set('x','y')", "exact", "string"},
    {"mysql", "varbinary(16)", "exact", "string"},
    {"mysql", "longblob", "exact", "string"},
    {"mysql", "json", "exact", "string"},
    {"mysql", "point", "exact", "string"},
    {"mariadb", "INT(11)", "exact", "int"},
    /* PostgreSQL */
    {"postgresql", "smallint", "exact", "smallint"},
    {"postgresql", "integer", "exact", "int"},
    {"postgresql", "bigint", "exact", "bigint"},
    {"postgresql", "oid", "exact", "bigint"},
    {"postgresql", "real", "exact", "float"},
    {"postgresql", "double precision", "exact", "double"},
    {"postgresql", "numeric(10,2)", "exact", "decimal(10,2)"},
    {"postgresql", "numeric(38,0)", "exact", "decimal(38,0)"},
    {"postgresql", "numeric(39,2)", "exact", "string"},
    {"postgresql", "numeric", "exact", "string"},
    {"postgresql", "numeric", "double", "double"},
    {"postgresql", "numeric(10,2)", "string", "string"},
    {"postgresql", "boolean", "exact", "boolean"},
    {"postgresql", "date", "exact", "date"},
    {"postgresql", "timestamp without time zone", "exact", "timestamp"},
    {"postgresql", "timestamp(6) without time zone", "exact", "timestamp"},
    {"postgresql", "timestamp with time zone", "exact", "timestamp"},
    {"postgresql", "time without time zone", "exact", "string"},
    {"postgresql", "time(3) with time zone", "exact", "string"},
    {"postgresql", "interval", "exact", "string"},
    {"postgresql", "uuid", "exact", "string"},
    {"postgresql", "jsonb", "exact", "string"},
    {"postgresql", "json", "exact", "string"},
    {"postgresql", "text", "exact", "string"},
    {"postgresql", "character varying(120)", "exact", "string"},
    {"postgresql", "character(3)", "exact", "string"},
    {"postgresql", "bytea", "exact", "string"},
    {"postgresql", "money", "exact", "string"},
    {"postgresql", "inet", "exact", "string"},
    {"postgresql", "text[]", "exact", "string"},
    {"postgresql", "integer[]", "exact", "string"},
    {"postgresql", "numeric(10,2)[]", "exact", "string"},
    {"postgresql", "mood", "exact", "string"},
    {"postgres", "integer", "exact", "int"},
    /* SQLite */
    {"sqlite", "INTEGER", "exact", "bigint"},
    {"sqlite", "INT", "exact", "bigint"},
    {"sqlite", "UNSIGNED BIG INT", "exact", "bigint"},
    {"sqlite", "NVARCHAR(120)", "exact", "string"},
    {"sqlite", "TEXT", "exact", "string"},
    {"sqlite", "CLOB", "exact", "string"},
    {"sqlite", "BLOB", "exact", "string"},
    {"sqlite", "", "exact", "string"},
    {"sqlite", "REAL", "exact", "double"},
    {"sqlite", "FLOAT", "exact", "double"},
    {"sqlite", "DOUBLE PRECISION", "exact", "double"},
    {"sqlite", "NUMERIC(10,2)", "exact", "double"},
    {"sqlite", "DECIMAL(10,5)", "exact", "double"},
    {"sqlite", "BOOLEAN", "exact", "bigint"},
    {"sqlite", "DATE", "exact", "date"},
    {"sqlite", "DATETIME", "exact", "timestamp"},
    {"sqlite", "TIMESTAMP", "exact", "timestamp"},
    {"sqlite", "JSON", "exact", "string"},
    /* MongoDB */
    {"mongodb", "int32", "exact", "int"},
    {"mongodb", "int64", "exact", "bigint"},
    {"mongodb", "double", "exact", "double"},
    {"mongodb", "decimal128", "exact", "string"},
    {"mongodb", "decimal128", "double", "double"},
    {"mongodb", "bool", "exact", "boolean"},
    {"mongodb", "date", "exact", "timestamp"},
    {"mongodb", "timestamp", "exact", "timestamp"},
    {"mongodb", "string", "exact", "string"},
    {"mongodb", "objectId", "exact", "string"},
    {"mongodb", "object", "exact", "string"},
    {"mongodb", "array", "exact", "string"},
    {"mongodb", "binary", "exact", "string"},
    {"mongodb", "null", "exact", "string"},
    {"mongo", "int64", "exact", "bigint"},
};

static void test_mapping(void)
{
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct athena_settings s;
		char out[64];

		athena_settings_default(&s);
		snprintf(s.decimal_mode, sizeof(s.decimal_mode), "%s", rows[i].mode);
		athena_type(rows[i].db, rows[i].type, true, &s, out, sizeof(out));
		if (strcmp(out, rows[i].want) != 0)
			fprintf(stderr, "mapping %s %s (%s):\n", rows[i].db, rows[i].type,
			        rows[i].mode);
		CHECK_STR(out, rows[i].want);
	}
	{
		char out[64];

		/* No settings = the defaults; binary modes never change a type. */
		CHECK_STR(athena_type("mysql", "decimal(12,4)", false, NULL, out, sizeof(out)),
		          "decimal(12,4)");
	}
}

static void test_trino_types(void)
{
	char out[256];

	CHECK_STR(athena_trino_type("string", out, sizeof(out)), "varchar");
	CHECK_STR(athena_trino_type("int", out, sizeof(out)), "integer");
	CHECK_STR(athena_trino_type("bigint", out, sizeof(out)), "bigint");
	CHECK_STR(athena_trino_type("timestamp", out, sizeof(out)), "timestamp(3)");
	CHECK_STR(athena_trino_type("decimal(20,0)", out, sizeof(out)), "decimal(20,0)");
	CHECK_STR(athena_trino_type("array<string>", out, sizeof(out)), "array(varchar)");
	CHECK_STR(athena_trino_type("array<struct<key:string,rows:bigint>>", out, sizeof(out)),
	          "array(row(key varchar, rows bigint))");
}

static void test_names(void)
{
	char out[64];

	catalog_glue_name("ArtistId", out, sizeof(out));
	CHECK_STR(out, "artistid");
	catalog_glue_name("First Name", out, sizeof(out));
	CHECK_STR(out, "first_name");
	catalog_glue_name("sales.orders", out, sizeof(out));
	CHECK_STR(out, "sales_orders");
	catalog_glue_name("pr\xc3\xa9nom", out, sizeof(out)); /* one _ per character */
	CHECK_STR(out, "pr_nom");
	catalog_glue_name("\xe5\x90\x8d\xe5\x89\x8d", out, sizeof(out));
	CHECK_STR(out, "__");
	catalog_glue_name("", out, sizeof(out));
	CHECK_STR(out, "_");
	catalog_glue_name("a-b$c", out, sizeof(out));
	CHECK_STR(out, "a_b_c");
}

static void test_template(void)
{
	struct ierr e = {0};
	struct buf head = {0};

	CHECK(catalog_check_template("", true, "s", NULL, &e) == 0);
	CHECK(catalog_check_template("", false, "s", NULL, &e) != 0);
	CHECK(strstr(e.msg, "ENABLE_PARTITIONING") != NULL);
	CHECK(catalog_check_template("{table}/year={year}/month={month}/day={day}/"
	                             "{run_id}-{seq}{ext}",
	                             true, "s", NULL, &e) == 0);
	CHECK(catalog_check_template("{table}/{year}/{month}/{run_id}-{seq}{ext}", true, "s", NULL,
	                             &e) != 0);
	CHECK(strstr(e.msg, "S3_KEY_TEMPLATE") != NULL && e.code == IERR_CONFIG);
	CHECK(catalog_check_template("{table}/year={year}/month={month}/day={day}/{seq}{ext}", true,
	                             "s", NULL, &e) != 0);
	CHECK(strstr(e.msg, "{run_id}") != NULL);
	CHECK(catalog_check_template("{table}/year={year}/month={month}/day={day}/x/{run_id}-{seq}",
	                             true, "s", NULL, &e) != 0);
	CHECK(catalog_check_template("{year}/{table}/year={year}/month={month}/day={day}/"
	                             "{run_id}-{seq}",
	                             true, "s", NULL, &e) != 0);
	CHECK(catalog_check_template("raw/{source}/{table}/year={year}/month={month}/day={day}/"
	                             "{source}-{run_id}-{seq}{ext}",
	                             true, "ms1", &head, &e) == 0);
	CHECK_STR(buf_cstr(&head), "raw/ms1/");
	buf_free(&head);
}

static const char schema_v1[] =
    "{\"columns\":[{\"name\":\"Id\",\"type\":\"bigint(20) unsigned\",\"nullable\":false},"
    "{\"name\":\"First Name\",\"type\":\"varchar(40)\",\"nullable\":true},"
    "{\"name\":\"price\",\"type\":\"decimal(10,2)\",\"nullable\":true},"
    "{\"name\":\"day\",\"type\":\"date\",\"nullable\":true}],"
    "\"primary_key\":[\"Id\"],\"inferred\":false}";
/* Run 2: a new column, price retyped (kept decimal), Id spelled in another case. */
static const char schema_v2[] =
    "{\"columns\":[{\"name\":\"id\",\"type\":\"bigint(20) unsigned\",\"nullable\":false},"
    "{\"name\":\"First Name\",\"type\":\"varchar(80)\",\"nullable\":true},"
    "{\"name\":\"price\",\"type\":\"double\",\"nullable\":true},"
    "{\"name\":\"day\",\"type\":\"date\",\"nullable\":true},"
    "{\"name\":\"at\",\"type\":\"datetime(6)\",\"nullable\":true}],"
    "\"primary_key\":[\"id\"],\"inferred\":false}";

static void test_union(void)
{
	struct catalog_model m;
	struct catalog_table *t;
	struct ierr e = {0};

	catalog_model_init(&m, "shop", "lake", "raw-bucket", "exports//", "");
	CHECK_STR(m.prefix, "exports/");
	CHECK(catalog_model_add(&m, "mysql", "Order Items", schema_v1, NULL, 2026, &e) == 0);
	CHECK(catalog_model_add(&m, "mysql", "Order Items", schema_v2, NULL, 2027, &e) == 0);
	t = catalog_model_table(&m, "Order Items");
	CHECK(t != NULL && t->ncols == 5);
	if (t && t->ncols == 5) {
		CHECK_STR(t->name, "order_items");
		CHECK_STR(t->cols[0].name, "id");
		CHECK_STR(t->cols[0].type, "decimal(20,0)");
		CHECK_STR(t->cols[1].name, "first_name");
		CHECK_STR(t->cols[2].type, "decimal(10,2)"); /* the first type stays */
		CHECK_STR(t->cols[3].name, "day_");          /* not the partition key */
		CHECK_STR(t->cols[4].name, "at");
		CHECK(t->type_changes == 1 && m.type_changes == 1);
		CHECK(t->year_min == 2026 && t->year_max == 2027);
	}
	/* Clashes: two keys with one Glue name; case-only duplicates; table names. */
	CHECK(catalog_model_add(&m, "mysql", "Order Items",
	                        "{\"columns\":[{\"name\":\"first-name\",\"type\":\"int\"}]}", NULL,
	                        2027, &e) != 0);
	CHECK(e.code == IERR_CONFIG && strstr(e.msg, "first_name") != NULL);
	CHECK(catalog_model_add(&m, "mysql", "x",
	                        "{\"columns\":[{\"name\":\"A\",\"type\":\"int\"},{\"name\":\"a\","
	                        "\"type\":\"int\"}]}",
	                        NULL, 2027, &e) != 0);
	CHECK(catalog_model_add(&m, "mysql", "order.items", "{\"columns\":[]}", NULL, 2027, &e) !=
	      0);
	CHECK(strstr(e.msg, "order_items") != NULL);
	CHECK(catalog_model_add(&m, "mysql", "ingesta_runs", "{\"columns\":[]}", NULL, 2027, &e) !=
	      0);
	CHECK(catalog_model_add(&m, "mysql", "bad", "not json", NULL, 2027, &e) != 0);
	CHECK(e.code == IERR_SPOOL);
	catalog_model_free(&m);
}

static const char ddl_golden[] =
    "CREATE EXTERNAL TABLE IF NOT EXISTS `order_items` (\n"
    "  `id` decimal(20,0),\n"
    "  `first_name` string,\n"
    "  `price` decimal(10,2),\n"
    "  `day_` date\n"
    ")\n"
    "PARTITIONED BY (`year` string, `month` string, `day` string)\n"
    "ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'\n"
    "WITH SERDEPROPERTIES (\n"
    "  'mapping.first_name'='First Name',\n"
    "  'mapping.day_'='day'\n"
    ")\n"
    "STORED AS INPUTFORMAT 'org.apache.hadoop.mapred.TextInputFormat'\n"
    "OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'\n"
    "LOCATION 's3://raw-bucket/exports/Order Items/'\n"
    "TBLPROPERTIES (\n"
    "  'projection.enabled'='true',\n"
    "  'projection.year.type'='integer',\n"
    "  'projection.year.range'='2026,2027',\n"
    "  'projection.month.type'='integer',\n"
    "  'projection.month.range'='1,12',\n"
    "  'projection.month.digits'='2',\n"
    "  'projection.day.type'='integer',\n"
    "  'projection.day.range'='1,31',\n"
    "  'projection.day.digits'='2',\n"
    "  'storage.location.template'='s3://raw-bucket/exports/Order "
    "Items/year=${year}/month=${month}/day=${day}/'\n"
    ");\n";

static const char latest_golden[] =
    "SELECT t.\"id\", t.\"first_name\", t.\"price\", t.\"day_\", t.\"year\", t.\"month\", "
    "t.\"day\"\n"
    "FROM \"order_items\" t\n"
    "JOIN (\n"
    "  SELECT \"run_id\", \"year\", \"month\", \"day\"\n"
    "  FROM (\n"
    "    SELECT \"run_id\", \"year\", \"month\", \"day\",\n"
    "      row_number() OVER (ORDER BY \"run_started_at\" DESC, \"run_id\" DESC) AS \"rn\"\n"
    "    FROM \"ingesta_runs\"\n"
    "    WHERE \"source\" = 'shop' AND \"table_name\" = 'Order Items'\n"
    "  )\n"
    "  WHERE \"rn\" = 1\n"
    ") c\n"
    "ON t.\"year\" = c.\"year\" AND t.\"month\" = c.\"month\" AND t.\"day\" = c.\"day\"\n"
    "AND regexp_extract(t.\"$path\", '([0-9]{8}T[0-9]{6}Z-[0-9a-f]{8})[^/]*$', 1) = "
    "c.\"run_id\"";

static const char table_input_golden[] =
    "{\"DatabaseName\":\"lake\",\"TableInput\":{\"Name\":\"order_items\",\"TableType\":"
    "\"EXTERNAL_TABLE\",\"Parameters\":{\"EXTERNAL\":\"TRUE\",\"classification\":\"json\","
    "\"ingesta.source\":\"shop\",\"ingesta.table\":\"Order Items\",\"projection.enabled\":"
    "\"true\",\"projection.year.type\":\"integer\",\"projection.year.range\":\"2026,2027\","
    "\"projection.month.type\":\"integer\",\"projection.month.range\":\"1,12\","
    "\"projection.month.digits\":\"2\",\"projection.day.type\":\"integer\","
    "\"projection.day.range\":\"1,31\",\"projection.day.digits\":\"2\","
    "\"storage.location.template\":\"s3://raw-bucket/exports/Order Items/year=${year}/"
    "month=${month}/day=${day}/\"},\"PartitionKeys\":[{\"Name\":\"year\",\"Type\":\"string\"},"
    "{\"Name\":\"month\",\"Type\":\"string\"},{\"Name\":\"day\",\"Type\":\"string\"}],"
    "\"StorageDescriptor\":{\"Columns\":[{\"Name\":\"id\",\"Type\":\"decimal(20,0)\","
    "\"Comment\":\"bigint(20) unsigned not null\"},{\"Name\":\"first_name\",\"Type\":"
    "\"string\",\"Comment\":\"varchar(40)\"},{\"Name\":\"price\",\"Type\":\"decimal(10,2)\","
    "\"Comment\":\"decimal(10,2)\"},{\"Name\":\"day_\",\"Type\":\"date\",\"Comment\":"
    "\"date\"}],\"Location\":\"s3://raw-bucket/exports/Order Items/\",\"InputFormat\":"
    "\"org.apache.hadoop.mapred.TextInputFormat\",\"OutputFormat\":"
    "\"org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat\",\"Compressed\":false,"
    "\"NumberOfBuckets\":0,\"SerdeInfo\":{\"SerializationLibrary\":"
    "\"org.openx.data.jsonserde.JsonSerDe\",\"Parameters\":{\"mapping.first_name\":"
    "\"First Name\",\"mapping.day_\":\"day\"}}}}}\n";

/* Trino's ConnectorViewDefinition JSON of order_items_latest. */
static void view_json_golden(struct buf *b)
{
	buf_puts(b, "{\"originalSql\":\"");
	for (const char *p = latest_golden; *p; p++) {
		if (*p == '"' || *p == '\\')
			buf_putc(b, '\\');
		if (*p == '\n')
			buf_puts(b, "\\n");
		else
			buf_putc(b, *p);
	}
	buf_puts(b, "\",\"catalog\":\"awsdatacatalog\",\"schema\":\"lake\",\"columns\":["
	            "{\"name\":\"id\",\"type\":\"decimal(20,0)\"},"
	            "{\"name\":\"first_name\",\"type\":\"varchar\"},"
	            "{\"name\":\"price\",\"type\":\"decimal(10,2)\"},"
	            "{\"name\":\"day_\",\"type\":\"date\"},"
	            "{\"name\":\"year\",\"type\":\"varchar\"},"
	            "{\"name\":\"month\",\"type\":\"varchar\"},"
	            "{\"name\":\"day\",\"type\":\"varchar\"}],\"runAsInvoker\":true}");
}

static void test_render(void)
{
	struct catalog_model m;
	struct ierr e = {0};
	struct buf out = {0}, want = {0};
	char *text;

	catalog_model_init(&m, "shop", "lake", "raw-bucket", "exports", "");
	CHECK(catalog_model_add(&m, "mysql", "Order Items", schema_v1, NULL, 2026, &e) == 0);
	catalog_render_table_ddl(&m, &m.tables[0], &out);
	CHECK_STR(buf_cstr(&out), ddl_golden);
	buf_reset(&out);
	catalog_view_sql(&m, &m.tables[0], CATALOG_VIEW_LATEST, &out);
	CHECK_STR(buf_cstr(&out), latest_golden);
	buf_reset(&out);
	catalog_view_sql(&m, &m.tables[0], CATALOG_VIEW_DAILY, &out);
	CHECK(strstr(buf_cstr(&out), "row_number() OVER (PARTITION BY \"year\", \"month\", \"day\" "
	                             "ORDER BY \"run_started_at\" DESC, \"run_id\" DESC)") != NULL);
	buf_reset(&out);
	catalog_render_json(&m, &out);
	CHECK(strstr(buf_cstr(&out), table_input_golden) != NULL);
	CHECK(strncmp(buf_cstr(&out), "{\"DatabaseInput\":{\"Name\":\"lake\"}}\n", 34) == 0);
	CHECK(strstr(buf_cstr(&out),
	             "\"TableType\":\"VIRTUAL_VIEW\",\"Parameters\":{\"presto_view\":"
	             "\"true\",\"comment\":\"Presto View\"") != NULL);
	CHECK(strstr(buf_cstr(&out), "\"ViewExpandedText\":\"/* Presto View */\"") != NULL);
	CHECK(strstr(buf_cstr(&out), "\"Name\":\"ingesta_runs\"") != NULL);
	CHECK(strstr(buf_cstr(&out), "array<struct<key:string,rows:bigint,bytes:bigint,"
	                             "sha256:string>>") != NULL);
	CHECK(strstr(buf_cstr(&out), "\"Location\":\"s3://raw-bucket/exports/ingesta_runs/\"") !=
	      NULL);
	buf_reset(&out);
	catalog_render_ddl(&m, &out);
	CHECK(strstr(buf_cstr(&out), "CREATE OR REPLACE VIEW \"order_items_daily\" AS\n") != NULL);
	CHECK(strstr(buf_cstr(&out), "CREATE EXTERNAL TABLE IF NOT EXISTS `ingesta_runs`") != NULL);

	/* The view's Glue text is Trino's encoding: prefix, base64 of the JSON, suffix. */
	text = catalog_presto_view_text(&m, &m.tables[0], CATALOG_VIEW_LATEST);
	CHECK(text != NULL && strncmp(text, "/* Presto View: ", 16) == 0 &&
	      strcmp(text + strlen(text) - 3, " */") == 0);
	if (text) {
		size_t n = strlen(text) - 19;
		unsigned char *dec = calloc(1, n + 4);
		int len = EVP_DecodeBlock(dec, (const unsigned char *)text + 16, (int)n);

		while (len > 0 && dec[len - 1] == '\0') /* EVP_DecodeBlock pads */
			len--;
		view_json_golden(&want);
		CHECK(len >= 0);
		if (len >= 0) {
			dec[len] = '\0';
			CHECK_STR((const char *)dec, buf_cstr(&want));
		}
		free(dec);
		free(text);
	}
	/* GLUE_VIEW_CATALOG: the catalog a Trino reading the same Glue database uses. */
	catalog_model_set_view_catalog(&m, "hive");
	text = catalog_presto_view_text(&m, &m.tables[0], CATALOG_VIEW_DAILY);
	if (text) {
		size_t n = strlen(text) - 19;
		unsigned char *dec = calloc(1, n + 4);

		CHECK(EVP_DecodeBlock(dec, (const unsigned char *)text + 16, (int)n) > 0);
		CHECK(strstr((const char *)dec, "\"catalog\":\"hive\",\"schema\":\"lake\"") !=
		      NULL);
		free(dec);
		free(text);
	}
	buf_free(&want);
	buf_free(&out);
	catalog_model_free(&m);
}

/* <table>_current of an incremental table: the key and the cursor by their
 * Glue names (Id -> id, day -> day_). */
static const char current_golden[] =
    "SELECT \"id\", \"first_name\", \"price\", \"day_\", \"year\", \"month\", \"day\"\n"
    "FROM (\n"
    "  SELECT t.\"id\", t.\"first_name\", t.\"price\", t.\"day_\", t.\"year\", t.\"month\", "
    "t.\"day\",\n"
    "    row_number() OVER (PARTITION BY t.\"id\" ORDER BY t.\"day_\" DESC, c.\"run_started_at\" "
    "DESC, c.\"run_id\" DESC) AS \"ingesta_rn\"\n"
    "  FROM \"order_items\" t\n"
    "  JOIN (\n"
    "    SELECT r.\"run_id\", r.\"year\", r.\"month\", r.\"day\", r.\"run_started_at\"\n"
    "    FROM \"ingesta_runs\" r\n"
    "    CROSS JOIN (\n"
    "      SELECT \"run_started_at\" AS \"snap_at\", \"run_id\" AS \"snap_id\"\n"
    "      FROM \"ingesta_runs\"\n"
    "      WHERE \"source\" = 'shop' AND \"table_name\" = 'Order Items' AND coalesce(\"mode\", "
    "'snapshot') = 'snapshot'\n"
    "      ORDER BY \"run_started_at\" DESC, \"run_id\" DESC\n"
    "      LIMIT 1\n"
    "    ) s\n"
    "    WHERE r.\"source\" = 'shop' AND r.\"table_name\" = 'Order Items'\n"
    "      AND (r.\"run_started_at\" > s.\"snap_at\" OR (r.\"run_started_at\" = s.\"snap_at\" AND "
    "r.\"run_id\" >= s.\"snap_id\"))\n"
    "  ) c\n"
    "  ON t.\"year\" = c.\"year\" AND t.\"month\" = c.\"month\" AND t.\"day\" = c.\"day\"\n"
    "  AND regexp_extract(t.\"$path\", '([0-9]{8}T[0-9]{6}Z-[0-9a-f]{8})[^/]*$', 1) = "
    "c.\"run_id\"\n"
    ") v\n"
    "WHERE \"ingesta_rn\" = 1";

static void test_current(void)
{
	struct catalog_model m;
	struct ierr e = {0};
	struct buf out = {0};

	catalog_model_init(&m, "shop", "lake", "raw-bucket", "exports", "");
	CHECK(catalog_model_add(&m, "mysql", "Order Items", schema_v1, NULL, 2026, &e) == 0);
	CHECK(catalog_view_count(&m.tables[0]) == 2);
	CHECK(!catalog_table_set_current(&m.tables[0], NULL, "[\"Id\"]"));
	CHECK(!catalog_table_set_current(&m.tables[0], "{\"column\":\"day\"}", "[]"));
	CHECK(catalog_view_count(&m.tables[0]) == 2);
	CHECK(catalog_table_set_current(&m.tables[0], "{\"column\":\"zz\",\"after\":null}",
	                                "[\"Id\"]"));
	CHECK(catalog_view_count(&m.tables[0]) == 2); /* no column zz */
	CHECK(catalog_table_set_current(&m.tables[0],
	                                "{\"column\":\"day\",\"after\":\"2026-01-01\","
	                                "\"through\":\"2026-01-02\"}",
	                                "[\"Id\"]"));
	CHECK(!catalog_table_set_current(&m.tables[0], "{\"column\":\"day\"}", "[\"Id\"]"));
	CHECK(catalog_view_count(&m.tables[0]) == 3);
	catalog_view_sql(&m, &m.tables[0], CATALOG_VIEW_CURRENT, &out);
	CHECK_STR(buf_cstr(&out), current_golden);
	buf_reset(&out);
	catalog_render_ddl(&m, &out);
	CHECK(strstr(buf_cstr(&out), "CREATE OR REPLACE VIEW \"order_items_current\" AS\n") !=
	      NULL);
	buf_reset(&out);
	catalog_render_json(&m, &out);
	CHECK(strstr(buf_cstr(&out), "\"Name\":\"order_items_current\",\"TableType\":"
	                             "\"VIRTUAL_VIEW\"") != NULL);
	buf_free(&out);
	catalog_model_free(&m);
}

/* A spool with two runs of one source and one of another, made by hand. */
static void test_load(void)
{
	char dir[] = "/tmp/ingesta-test-catalog-XXXXXX";
	struct ierr e = {0};
	struct spool *sp;
	struct catalog_model m;
	char *err = NULL;
	int n;

	CHECK(mkdtemp(dir) != NULL);
	sp = spool_open(dir, SPOOL_ROLE_OPERATOR, &e);
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	CHECK(sqlite3_exec(
	          spool_db(sp),
	          "INSERT INTO runs (run_id, source, db_type, bucket, started_at, state, "
	          "settings_json) VALUES "
	          "('20261201T093000Z-00000001', 'shop', 'mysql', 'old-bucket', 1796117400000, "
	          "'complete', NULL),"
	          "('20261202T093000Z-00000002', 'shop', 'mysql', 'raw-bucket', 1796203800000, "
	          "'complete', '{\"decimal_mode\":\"string\",\"binary_mode\":\"utf8\","
	          "\"s3_prefix\":\"\",\"key_template\":\"\"}'),"
	          "('20261202T093000Z-00000003', 'shop', 'mysql', 'raw-bucket', 1796203900000, "
	          "'complete', '{\"s3_prefix\":\"elsewhere\"}'),"
	          "('20261202T093000Z-00000004', 'other', 'sqlite', 'b', 1796203800000, "
	          "'complete', NULL);"
	          "INSERT INTO partitions (run_id, table_name, state, schema_json) VALUES "
	          "('20261201T093000Z-00000001', 'items', 'complete', "
	          "'{\"columns\":[{\"name\":\"id\",\"type\":\"int(11)\",\"nullable\":false}]}'),"
	          "('20261202T093000Z-00000002', 'items', 'complete', "
	          "'{\"columns\":[{\"name\":\"id\",\"type\":\"int(11)\",\"nullable\":false},"
	          "{\"name\":\"price\",\"type\":\"decimal(5,2)\",\"nullable\":true}]}'),"
	          "('20261202T093000Z-00000002', 'open', 'open', "
	          "'{\"columns\":[{\"name\":\"x\",\"type\":\"int\"}]}'),"
	          "('20261202T093000Z-00000003', 'skipped', 'complete', "
	          "'{\"columns\":[{\"name\":\"x\",\"type\":\"int\"}]}'),"
	          "('20261202T093000Z-00000004', 'theirs', 'complete', "
	          "'{\"columns\":[{\"name\":\"x\",\"type\":\"INTEGER\"}]}');",
	          NULL, NULL, &err) == SQLITE_OK);
	if (err)
		fprintf(stderr, "%s\n", err);
	sqlite3_free(err);
	catalog_model_init(&m, "shop", "lake", "", "", "");
	n = catalog_model_load(&m, sp, NULL, &e);
	CHECK(n == 2);
	CHECK(m.ntables == 1);
	CHECK_STR(m.bucket, "raw-bucket"); /* the newest run's */
	if (m.ntables == 1 && m.tables[0].ncols == 2) {
		CHECK_STR(m.tables[0].cols[1].name, "price");
		CHECK_STR(m.tables[0].cols[1].type, "string"); /* that run's DECIMAL_MODE */
	}
	catalog_model_free(&m);
	catalog_model_init(&m, "nobody", "lake", "", "", "");
	CHECK(catalog_model_load(&m, sp, NULL, &e) == 0);
	catalog_model_free(&m);
	spool_close(sp);
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		CHECK(system(cmd) == 0);
	}
}

static void test_glue_errors(void)
{
	char code[64];

	glue_error_code("com.amazonaws.glue#EntityNotFoundException", NULL, 400, code,
	                sizeof(code));
	CHECK_STR(code, "EntityNotFoundException");
	glue_error_code(NULL, "ThrottlingException:http://internal.amazon.com/coral/", 400, code,
	                sizeof(code));
	CHECK_STR(code, "ThrottlingException");
	glue_error_code("", "", 503, code, sizeof(code));
	CHECK_STR(code, "ServiceUnavailable");
	CHECK(glue_classify(400, "ThrottlingException") == IERR_TRANSIENT);
	CHECK(glue_classify(400, "ConcurrentModificationException") == IERR_TRANSIENT);
	CHECK(glue_classify(500, "InternalServiceException") == IERR_TRANSIENT);
	CHECK(glue_classify(503, "ServiceUnavailable") == IERR_TRANSIENT);
	CHECK(glue_classify(400, "AccessDeniedException") == IERR_PERMANENT);
	CHECK(glue_classify(400, "ValidationException") == IERR_PERMANENT);
	CHECK(glue_classify(400, "InvalidInputException") == IERR_PERMANENT);
	CHECK(glue_classify(403, "UnrecognizedClientException") == IERR_PERMANENT);
}

int main(void)
{
	test_mapping();
	test_trino_types();
	test_names();
	test_template();
	test_union();
	test_render();
	test_current();
	test_load();
	test_glue_errors();
	return test_done();
}
