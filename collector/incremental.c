/*
 * incremental.c - table plans and range clauses of LOAD_MODE=incremental
 * (see incremental.h).
 */
#include "incremental.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "json.h"

const char *incr_kind_name(enum cursor_kind k)
{
	static const char *const names[] = {"unorderable", "integer",   "decimal",
	                                    "date",        "date-time", "string"};

	return names[k];
}

static bool has(const char *hay, const char *needle)
{
	return strcasestr(hay, needle) != NULL;
}

/* SQLite: by the declared type's affinity (https://sqlite.org/datatype3.html
 * 3.1): INTEGER, TEXT and NUMERIC affinities order exactly; REAL and BLOB
 * (or no declared type, where any value may appear) do not count. */
static enum cursor_kind sqlite_kind(const char *t)
{
	if (has(t, "INT"))
		return CK_INT;
	if (has(t, "CHAR") || has(t, "CLOB") || has(t, "TEXT"))
		return CK_STRING;
	if (has(t, "BLOB") || *t == '\0' || has(t, "REAL") || has(t, "FLOA") || has(t, "DOUB"))
		return CK_NONE;
	if (has(t, "BOOL"))
		return CK_NONE;
	if (has(t, "TIME"))
		return CK_DATETIME;
	if (has(t, "DATE"))
		return CK_DATE;
	return CK_DECIMAL; /* NUMERIC, DECIMAL(p,s), ... */
}

static bool starts(const char *t, const char *p)
{
	return strncmp(t, p, strlen(p)) == 0;
}

/* PostgreSQL: format_type() spellings. */
static enum cursor_kind pg_kind(const char *t)
{
	if (strcmp(t, "smallint") == 0 || strcmp(t, "integer") == 0 || strcmp(t, "bigint") == 0)
		return CK_INT;
	if (strcmp(t, "numeric") == 0 || starts(t, "numeric("))
		return CK_DECIMAL;
	if (strcmp(t, "date") == 0)
		return CK_DATE;
	if (starts(t, "timestamp"))
		return CK_DATETIME;
	if (strcmp(t, "text") == 0 || starts(t, "character varying") || starts(t, "character") ||
	    strcmp(t, "\"char\"") == 0)
		return CK_STRING;
	return CK_NONE;
}

/* MySQL/MariaDB: information_schema.COLUMNS.COLUMN_TYPE spellings ("int(11)",
 * "bigint(20) unsigned", "decimal(12,2)", "datetime(6)", "varchar(40)").
 * tinyint(1) is BOOLEAN; longtext is MariaDB's JSON; enum/set order by their
 * index, not their text; binary strings, floats, bit, time, JSON, geometry
 * are refused. */
static enum cursor_kind mysql_kind(const char *t)
{
	static const char *const ints[] = {"tinyint", "smallint", "mediumint", "int", "bigint"};

	if (starts(t, "tinyint(1)") && (t[10] == '\0' || t[10] == ' '))
		return CK_NONE;
	for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
		size_t n = strlen(ints[i]);
		if (strncmp(t, ints[i], n) == 0 && (t[n] == '\0' || t[n] == '(' || t[n] == ' '))
			return CK_INT;
	}
	if (starts(t, "year"))
		return CK_INT;
	if (starts(t, "decimal"))
		return CK_DECIMAL;
	if (strcmp(t, "date") == 0)
		return CK_DATE;
	if (starts(t, "datetime") || starts(t, "timestamp"))
		return CK_DATETIME;
	if (starts(t, "char(") || starts(t, "varchar(") || strcmp(t, "tinytext") == 0 ||
	    strcmp(t, "text") == 0 || strcmp(t, "mediumtext") == 0)
		return CK_STRING;
	return CK_NONE;
}

/* MongoDB: the BSON type of the field as the driver's plan names it
 * (schema_infer_type_name(): "int32", "int64", "decimal128", "date",
 * "string", "objectId"; "int64" when int32 and int64 both appear: they
 * compare as numbers). Doubles, booleans, documents, arrays, binaries, timestamps and a
 * mix of other types are refused: a $gt on a value of one BSON type never
 * matches documents holding another (type bracketing), so a mixed field
 * would lose rows silently. */
static enum cursor_kind mongo_kind(const char *t)
{
	if (strcmp(t, "int32") == 0 || strcmp(t, "int64") == 0)
		return CK_INT;
	if (strcmp(t, "decimal128") == 0)
		return CK_DECIMAL;
	if (strcmp(t, "date") == 0)
		return CK_DATETIME;
	if (strcmp(t, "string") == 0 || strcmp(t, "objectId") == 0)
		return CK_STRING;
	return CK_NONE;
}

enum cursor_kind incr_cursor_kind(const char *db_type, const char *type)
{
	if (type == NULL)
		return CK_NONE;
	if (strcmp(db_type, "sqlite") == 0)
		return sqlite_kind(type);
	if (strcmp(db_type, "postgresql") == 0)
		return pg_kind(type);
	if (strcmp(db_type, "mysql") == 0)
		return mysql_kind(type);
	if (strcmp(db_type, "mongodb") == 0)
		return mongo_kind(type);
	return CK_NONE;
}

/* Only [A-Za-z0-9_]: a charset or collation name from the server's catalog. */
static bool plain_name(const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_')
			return false;
	return true;
}

int incr_mysql_value_sql(const char *type, const char *charset, const char *collation,
                         struct buf *out)
{
	const char *p;

	switch (mysql_kind(type)) {
	case CK_INT:
		buf_puts(out,
		         strstr(type, "unsigned") ? "CAST(? AS UNSIGNED)" : "CAST(? AS SIGNED)");
		return 0;
	case CK_DECIMAL:
		/* decimal(p,s): digits and one comma, copied */
		p = strchr(type, '(');
		buf_puts(out, "CAST(? AS DECIMAL");
		if (p) {
			size_t n = strspn(p + 1, "0123456789,");
			if (p[1 + n] != ')')
				return -1;
			buf_printf(out, "(%.*s)", (int)n, p + 1);
		}
		buf_putc(out, ')');
		return 0;
	case CK_DATE:
		buf_puts(out, "CAST(? AS DATE)");
		return 0;
	case CK_DATETIME:
		/* datetime(6), timestamp(3): the fraction digits kept; a TIMESTAMP
		 * compares with a DATETIME in the session's time zone (UTC). */
		p = strchr(type, '(');
		buf_puts(out, "CAST(? AS DATETIME");
		if (p && p[1] >= '0' && p[1] <= '6' && p[2] == ')')
			buf_printf(out, "(%c)", p[1]);
		buf_putc(out, ')');
		return 0;
	case CK_STRING:
		/* the column's own collation orders the comparison, as it orders
		 * max() */
		if (!plain_name(charset) || !plain_name(collation))
			return -1;
		buf_printf(out, "CONVERT(? USING %s) COLLATE %s", charset, collation);
		return 0;
	default:
		return -1;
	}
}

/* "table:value" items separated by commas; spaces around items trimmed. */
static int check_list(const char *key, const char *list, struct ierr *e)
{
	const char *p = list;

	while (*p) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		const char *colon = NULL;

		for (size_t i = 0; i < n; i++)
			if (p[i] == ':')
				colon = p + i;
		while (n > 0 && isspace((unsigned char)*p)) {
			p++;
			n--;
		}
		if (n > 0 && (colon == NULL || colon == p || colon == p + n - 1))
			return ierr_set(e, IERR_CONFIG, "%s: \"%.*s\" is not table:%s", key, (int)n,
			                p, strcmp(key, "PRIMARY_KEYS") == 0 ? "col+col" : "column");
		if (end == NULL)
			break;
		p = end + 1;
	}
	return 0;
}

int incr_settings_from(const struct config *cfg, struct incr_settings *s, struct ierr *e)
{
	const char *n = config_str(cfg, "INCREMENTAL_NULLS");

	memset(s, 0, sizeof(*s));
	s->on = strcmp(config_str(cfg, "LOAD_MODE"), "incremental") == 0;
	s->column = config_str(cfg, "INCREMENTAL_COLUMN");
	s->per_table = config_str(cfg, "INCREMENTAL_COLUMNS");
	s->keys = config_str(cfg, "PRIMARY_KEYS");
	s->nulls = strcmp(n, "snapshot") == 0 ? NULLS_SNAPSHOT
	           : strcmp(n, "skip") == 0   ? NULLS_SKIP
	                                      : NULLS_REFUSE;
	s->lag_ms = config_int(cfg, "INCREMENTAL_LAG");
	s->refresh_ms = config_int(cfg, "FULL_REFRESH_EVERY");
	if (check_list("INCREMENTAL_COLUMNS", s->per_table, e) != 0 ||
	    check_list("PRIMARY_KEYS", s->keys, e) != 0)
		return -1;
	if (s->on && *s->column == '\0' && *s->per_table == '\0')
		return ierr_set(e, IERR_CONFIG,
		                "LOAD_MODE=incremental: set INCREMENTAL_COLUMN or "
		                "INCREMENTAL_COLUMNS (the cursor column of the tables)");
	return 0;
}

bool incr_list_lookup(const char *list, const char *table, char *out, size_t n)
{
	const char *p = list;
	size_t tl = strlen(table);

	while (*p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *colon = NULL;

		while (len > 0 && isspace((unsigned char)*p)) {
			p++;
			len--;
		}
		while (len > 0 && isspace((unsigned char)p[len - 1]))
			len--;
		for (size_t i = 0; i < len; i++)
			if (p[i] == ':')
				colon = p + i; /* the last one: table names may hold ':' */
		if (colon && (size_t)(colon - p) == tl && strncmp(p, table, tl) == 0) {
			snprintf(out, n, "%.*s", (int)(len - tl - 1), colon + 1);
			return true;
		}
		if (end == NULL)
			break;
		p = end + 1;
	}
	return false;
}

static const struct column_info *find_col(const struct table_schema *s, const char *name)
{
	for (size_t i = 0; i < s->ncols; i++)
		if (strcmp(s->cols[i].name, name) == 0)
			return &s->cols[i];
	return NULL;
}

void incr_table_free(struct incr_table *t)
{
	buf_free(&t->key_json);
	memset(t, 0, sizeof(*t));
}

static int plan_keys(const struct incr_settings *s, const char *table,
                     const struct table_schema *schema, struct incr_table *out, struct ierr *e)
{
	char keys[1024];
	struct lossy none = {0};

	buf_putc(&out->key_json, '[');
	if (incr_list_lookup(s->keys, table, keys, sizeof(keys))) {
		char *save = NULL, *tok;
		int n = 0;

		for (tok = strtok_r(keys, "+", &save); tok; tok = strtok_r(NULL, "+", &save)) {
			while (isspace((unsigned char)*tok))
				tok++;
			for (size_t l = strlen(tok); l > 0 && isspace((unsigned char)tok[l - 1]);
			     l--)
				tok[l - 1] = '\0';
			if (find_col(schema, tok) == NULL)
				return ierr_set(e, IERR_CONFIG,
				                "PRIMARY_KEYS: table \"%s\" has no column \"%s\"",
				                table, tok);
			if (n++)
				buf_putc(&out->key_json, ',');
			json_string(&out->key_json, tok, strlen(tok), &none);
		}
	} else {
		if (schema->npk == 0)
			return ierr_set(e, IERR_CONFIG,
			                "table \"%s\": incremental (cursor column \"%s\") but no "
			                "primary key at the source; name one in PRIMARY_KEYS "
			                "(%s:col+col), <table>_current keeps one row per key",
			                table, out->column, table);
		for (size_t i = 0; i < schema->npk; i++) {
			if (i)
				buf_putc(&out->key_json, ',');
			json_string(&out->key_json, schema->pk[i], strlen(schema->pk[i]), &none);
		}
	}
	buf_putc(&out->key_json, ']');
	return 0;
}

int incr_plan_table(const struct incr_settings *s, const char *db_type, const char *table,
                    const struct table_schema *schema, struct incr_table *out, struct ierr *e)
{
	const struct column_info *c;

	memset(out, 0, sizeof(*out));
	if (!s->on)
		return 0;
	out->explicit_col = incr_list_lookup(s->per_table, table, out->column, sizeof(out->column));
	if (!out->explicit_col) {
		if (*s->column == '\0' || find_col(schema, s->column) == NULL)
			return 0; /* no cursor: a snapshot */
		snprintf(out->column, sizeof(out->column), "%s", s->column);
	}
	c = find_col(schema, out->column);
	if (c == NULL)
		return ierr_set(e, IERR_CONFIG,
		                "INCREMENTAL_COLUMNS: table \"%s\" has no column \"%s\"", table,
		                out->column);
	snprintf(out->type, sizeof(out->type), "%s", c->type);
	out->kind = incr_cursor_kind(db_type, c->type);
	if (out->kind == CK_NONE)
		return ierr_set(
		    e, IERR_CONFIG,
		    "table \"%s\": cursor column \"%s\" has type \"%s\", which cannot be "
		    "ordered exactly (cursors: integers, decimals, dates, date-times, "
		    "strings)",
		    table, out->column, c->type);
	out->nullable = c->nullable;
	if (c->nullable && s->nulls == NULLS_REFUSE)
		return ierr_set(
		    e, IERR_CONFIG,
		    "table \"%s\": cursor column \"%s\" may be NULL; declare it NOT NULL "
		    "or set INCREMENTAL_NULLS=snapshot|skip (README \"Incremental "
		    "extraction\")",
		    table, out->column);
	if (plan_keys(s, table, schema, out, e) != 0) {
		incr_table_free(out);
		return -1;
	}
	out->incremental = true;
	return 0;
}

static void placeholder(enum incr_dialect d, int n, const char *type, struct buf *out)
{
	if (d == DIALECT_SQLITE) {
		buf_printf(out, "?%d", n);
	} else if (d == DIALECT_MYSQL) {
		const char *hole = strchr(type, '?');
		const char *var = n == 1 ? "@ingesta_after" : "@ingesta_through";

		if (hole == NULL)
			buf_puts(out, var);
		else
			buf_printf(out, "%.*s%s%s", (int)(hole - type), type, var, hole + 1);
	} else
		buf_printf(out, "current_setting('ingesta.%s')::%s", n == 1 ? "after" : "through",
		           type);
}

void incr_where_sql(enum incr_dialect d, const char *quoted_col, const char *type, bool snapshot,
                    bool has_after, bool has_through, struct buf *out)
{
	buf_puts(out, " WHERE ");
	if (snapshot) {
		if (!has_through) {
			buf_printf(out, "%s IS NULL", quoted_col);
			return;
		}
		buf_printf(out, "(%s <= ", quoted_col);
		placeholder(d, 2, type, out);
		buf_printf(out, " OR %s IS NULL)", quoted_col);
		return;
	}
	if (has_after) {
		buf_printf(out, "%s > ", quoted_col);
		placeholder(d, 1, type, out);
		buf_puts(out, " AND ");
	}
	buf_printf(out, "%s <= ", quoted_col);
	placeholder(d, 2, type, out);
}
