/*
 * src_mysql.c - the MySQL / MariaDB source driver (libmariadb / Connector/C).
 *
 * One connection per run (COLLECT_PARALLEL: several), always over TCP (MYSQL_HOST=localhost
 * included, as the original's PyMySQL did), character set utf8mb4, session time_zone
 * '+00:00' (TIMESTAMP values arrive in UTC) and sql_mode '' (no ORACLE/ANSI
 * mode changing types or quoting). begin_snapshot() opens one REPEATABLE READ
 * transaction WITH CONSISTENT SNAPSHOT, READ ONLY that every table is read in
 * (with COLLECT_PARALLEL, one per connection, all started under one brief
 * FLUSH TABLES WITH READ LOCK: see msrc_begin_shared_snapshot).
 *
 * Rows are streamed with mysql_use_result() over the text protocol: the client
 * holds one row at a time, so memory is bounded by the largest row whatever the
 * table size. Each table is read in three steps:
 *   1. `SELECT * FROM t LIMIT 0` gives the column metadata (no rows);
 *   2. the real SELECT: `SELECT *`, or a column list when the server must
 *      convert a column: GEOMETRY as ST_AsText(col) (WKT, a JSON string) and
 *      FLOAT as CAST(col AS DOUBLE) (the text protocol rounds FLOAT to 6
 *      significant digits; the double of a float is exact);
 *   3. per column a converter is chosen once from MYSQL_FIELD (type, flags,
 *      charset, MariaDB extended metadata) and the `,"col":` key prefix is
 *      precomputed, then every row is converted field by field per TYPES.md
 *      (the text -> JSON conversions themselves are in mysql_value.c).
 * Invisible columns are left out, as `SELECT *` leaves them out.
 * JSON columns: MySQL sends MYSQL_TYPE_JSON; MariaDB stores JSON as LONGTEXT
 * and, from 10.5 with extended metadata, flags it with format name "json";
 * for older MariaDB the json_valid(`col`) CHECK constraints are looked up in
 * information_schema instead. A JSON value the re-emitter rejects (MariaDB's
 * json_valid is laxer than RFC 8259 in corner cases) is written as a string so
 * the line stays valid JSON.
 *
 * SOURCE_QUERY_TIMEOUT is the client read/write timeout (a server that sends
 * nothing for that long fails the run) and the server's lock_wait_timeout; a
 * long table that keeps streaming is never cut off by it.
 *
 * Errors come back as IERR_SOURCE "mysql <host>:<port>/<db>: table "t": <server
 * message>". The password is never formatted anywhere.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <errmsg.h>
#include <mysql.h>

#include "buf.h"
#include "config.h"
#include "err.h"
#include "json.h"
#include "mysql_value.h"
#include "source.h"
#include "util.h"
#include "writer.h"

#define BINARY_CHARSET_NR 63

struct source {
	MYSQL *conn;
	char label[512]; /* "host:port/db", for messages */
	bool include_views;
	bool mariadb;
	bool ext_metadata;     /* MariaDB extended type metadata negotiated */
	bool broken;           /* connection cancelled after an aborted stream */
	int64_t query_timeout; /* seconds, 0 = none */
	struct buf sql;        /* scratch for building statements */
};

struct column {
	enum mysql_conv conv;
	size_t key_off; /* into plan.keys: `{"name":` or `,"name":` */
	size_t key_len;
};

struct plan {
	struct column *cols;
	unsigned n;
	struct buf keys;
};

/* ---- errors ---------------------------------------------------------------- */

static int fail_conn(struct source *s, const char *table, struct ierr *e)
{
	const char *msg = mysql_error(s->conn);
	char hint[96] = "";

	if (msg == NULL || msg[0] == '\0')
		msg = "unknown error";
	/* A read timeout and a dropped connection look the same (CR_SERVER_LOST). */
	if (s->query_timeout > 0 && mysql_errno(s->conn) == CR_SERVER_LOST)
		snprintf(
		    hint, sizeof(hint),
		    " (no data within SOURCE_QUERY_TIMEOUT=%llds, or the connection was closed)",
		    (long long)s->query_timeout);
	if (table != NULL)
		return ierr_set(e, IERR_SOURCE, "mysql %s: table \"%s\": %s%s", s->label, table,
		                msg, hint);
	return ierr_set(e, IERR_SOURCE, "mysql %s: %s%s", s->label, msg, hint);
}

/* ---- SQL text ---------------------------------------------------------------- */

/* `name` with backticks doubled: safe for any identifier. */
static void append_ident(struct buf *b, const char *name, size_t n)
{
	buf_putc(b, '`');
	for (size_t i = 0; i < n; i++) {
		if (name[i] == '`')
			buf_putc(b, '`');
		buf_putc(b, name[i]);
	}
	buf_putc(b, '`');
}

/* 'text' escaped for the connection's charset (sql_mode '' keeps backslash
 * escapes meaningful). */
static void append_literal(struct source *s, struct buf *b, const char *text)
{
	size_t n = strlen(text);

	buf_putc(b, '\'');
	buf_reserve(b, 2 * n + 2);
	b->len += mysql_real_escape_string(s->conn, b->data + b->len, text, (unsigned long)n);
	buf_putc(b, '\'');
}

static int exec(struct source *s, const char *sql, size_t n, const char *table, struct ierr *e)
{
	if (mysql_real_query(s->conn, sql, (unsigned long)n) != 0)
		return fail_conn(s, table, e);
	return 0;
}

/* Run a statement that returns no rows (SET, START TRANSACTION). */
static int exec_cmd(struct source *s, const char *sql, struct ierr *e)
{
	MYSQL_RES *res;

	if (exec(s, sql, strlen(sql), NULL, e) != 0)
		return -1;
	res = mysql_store_result(s->conn);
	if (res != NULL)
		mysql_free_result(res);
	return 0;
}

/* ---- open / close ------------------------------------------------------------ */

static int set_ssl(MYSQL *conn, const char *mode, const char *ca, struct ierr *e)
{
	my_bool on = 1;
	my_bool off = 0;

	if (strcasecmp(mode, "DISABLED") == 0) {
		mysql_optionsv(conn, MYSQL_OPT_SSL_ENFORCE, &off);
		mysql_optionsv(conn, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &off);
		return 0;
	}
	if ((strcasecmp(mode, "VERIFY_CA") == 0 || strcasecmp(mode, "VERIFY_IDENTITY") == 0) &&
	    ca[0] == '\0')
		return ierr_set(e, IERR_CONFIG, "MYSQL_SSL_CA: required when MYSQL_SSL_MODE=%s",
		                mode);
	/* use_ssl: TLS when the server offers it. Connector/C 3.3 falls back to
	 * plain text when the server has no TLS and no verification is asked, so
	 * REQUIRED and VERIFY_* are enforced after connecting (ssl_required). */
	mysql_optionsv(conn, MYSQL_OPT_SSL_ENFORCE, &on);
	if (ca[0] != '\0')
		mysql_optionsv(conn, MYSQL_OPT_SSL_CA, ca); /* chain verified (VERIFY_PEER) */
	if (strcasecmp(mode, "VERIFY_IDENTITY") == 0)
		mysql_optionsv(conn, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &on);
	else
		mysql_optionsv(conn, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &off);
	return 0;
}

static bool ssl_required(const char *mode)
{
	return strcasecmp(mode, "DISABLED") != 0 && strcasecmp(mode, "PREFERRED") != 0;
}

static int setup_session(struct source *s, int64_t query_timeout, struct ierr *e)
{
	struct buf *q = &s->sql;

	buf_reset(q);
	/* net_write_timeout: the server waits that long for us to take the next
	 * packet of a streamed result; the spool may be slow (fsync, quota wait). */
	buf_puts(q, "SET SESSION time_zone = '+00:00', sql_mode = '', "
	            "net_write_timeout = 3600, net_read_timeout = 3600");
	if (query_timeout > 0)
		buf_printf(q, ", lock_wait_timeout = %lld", (long long)query_timeout);
	return exec_cmd(s, buf_cstr(q), e);
}

/* Duration keys come in milliseconds; Connector/C wants whole seconds. */
static int64_t duration_sec(int64_t ms)
{
	int64_t sec = (ms + 999) / 1000;

	return sec > 86400 * 365 ? 86400 * 365 : sec;
}

static struct source *msrc_open(const struct config *cfg, struct ierr *e)
{
	const char *host = config_str(cfg, "MYSQL_HOST");
	const char *user = config_str(cfg, "MYSQL_USER");
	const char *password = config_str(cfg, "MYSQL_PASSWORD");
	const char *db = config_str(cfg, "MYSQL_DATABASE");
	const char *ssl_mode = config_str(cfg, "MYSQL_SSL_MODE");
	unsigned port = (unsigned)config_int(cfg, "MYSQL_PORT");
	int64_t connect_timeout = duration_sec(config_int(cfg, "SOURCE_CONNECT_TIMEOUT"));
	int64_t query_timeout = duration_sec(config_int(cfg, "SOURCE_QUERY_TIMEOUT"));
	unsigned int proto = MYSQL_PROTOCOL_TCP;
	unsigned long max_packet = 1UL << 30;
	struct source *s;
	const char *server_type = NULL;

	if (db[0] == '\0') {
		ierr_set(e, IERR_CONFIG, "MYSQL_DATABASE: required for DB_TYPE=mysql");
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		ierr_set(e, IERR_INTERNAL, "mysql: out of memory");
		return NULL;
	}
	s->include_views = config_bool(cfg, "INCLUDE_VIEWS");
	s->query_timeout = query_timeout;
	snprintf(s->label, sizeof(s->label), "%s:%u/%s", host, port, db);
	s->conn = mysql_init(NULL);
	if (s->conn == NULL) {
		ierr_set(e, IERR_INTERNAL, "mysql %s: mysql_init failed", s->label);
		free(s);
		return NULL;
	}
	mysql_optionsv(s->conn, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	mysql_optionsv(s->conn, MYSQL_OPT_PROTOCOL, &proto);
	mysql_optionsv(s->conn, MYSQL_OPT_MAX_ALLOWED_PACKET, &max_packet);
	if (connect_timeout > 0) {
		unsigned int t = (unsigned int)connect_timeout;
		mysql_optionsv(s->conn, MYSQL_OPT_CONNECT_TIMEOUT, &t);
	}
	if (query_timeout > 0) {
		unsigned int t = (unsigned int)query_timeout;
		mysql_optionsv(s->conn, MYSQL_OPT_READ_TIMEOUT, &t);
		mysql_optionsv(s->conn, MYSQL_OPT_WRITE_TIMEOUT, &t);
	}
	if (set_ssl(s->conn, ssl_mode, config_str(cfg, "MYSQL_SSL_CA"), e) != 0)
		goto fail;
	if (mysql_real_connect(s->conn, host, user[0] ? user : NULL, password, db, port, NULL, 0) ==
	    NULL) {
		fail_conn(s, NULL, e);
		goto fail;
	}
	if (ssl_required(ssl_mode) && mysql_get_ssl_cipher(s->conn) == NULL) {
		ierr_set(e, IERR_SOURCE,
		         "mysql %s: MYSQL_SSL_MODE=%s but the server does not support TLS",
		         s->label, ssl_mode);
		goto fail;
	}
	if (mariadb_get_infov(s->conn, MARIADB_CONNECTION_SERVER_TYPE, &server_type) == 0 &&
	    server_type != NULL)
		s->mariadb = strcasecmp(server_type, "MariaDB") == 0;
	if (s->mariadb) {
		unsigned long ext = 0;
		if (mariadb_get_infov(s->conn, MARIADB_CONNECTION_EXTENDED_SERVER_CAPABILITIES,
		                      &ext) == 0)
			s->ext_metadata = (ext & (MARIADB_CLIENT_EXTENDED_METADATA >> 32)) != 0;
	}
	if (setup_session(s, query_timeout, e) != 0)
		goto fail;
	return s;
fail:
	mysql_close(s->conn);
	buf_free(&s->sql);
	free(s);
	return NULL;
}

static void msrc_close(struct source *s)
{
	if (s == NULL)
		return;
	mysql_close(s->conn);
	buf_free(&s->sql);
	free(s);
}

/* ---- discovery and snapshot --------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int msrc_list_tables(struct source *s, struct strlist *out, struct ierr *e)
{
	MYSQL_RES *res;
	MYSQL_ROW row;
	size_t first = out->len;

	/* SYSTEM VERSIONED: MariaDB's type for system-versioned base tables. */
	buf_reset(&s->sql);
	buf_puts(&s->sql, "SELECT TABLE_NAME FROM information_schema.TABLES "
	                  "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE IN "
	                  "('BASE TABLE', 'SYSTEM VERSIONED'");
	if (s->include_views)
		buf_puts(&s->sql, ", 'VIEW'");
	buf_putc(&s->sql, ')');
	if (exec(s, s->sql.data, s->sql.len, NULL, e) != 0)
		return -1;
	res = mysql_use_result(s->conn);
	if (res == NULL)
		return fail_conn(s, NULL, e);
	while ((row = mysql_fetch_row(res)) != NULL) {
		if (row[0] != NULL)
			strlist_push(out, row[0]);
	}
	if (mysql_errno(s->conn) != 0) {
		fail_conn(s, NULL, e);
		mysql_free_result(res);
		return -1;
	}
	mysql_free_result(res);
	/* Byte order, not the information_schema collation's case folding. */
	qsort(out->items + first, out->len - first, sizeof(out->items[0]), cmp_str);
	return 0;
}

static int msrc_begin_snapshot(struct source *s, struct ierr *e)
{
	if (exec_cmd(s, "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ", e) != 0)
		return -1;
	if (exec_cmd(s, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY", e) != 0)
		return -1;
	/* The server's clock at the snapshot (session time zone UTC): what
	 * INCREMENTAL_LAG counts back from. */
	return exec_cmd(s, "SET @ingesta_snapshot_at = NOW(6)", e);
}

/*
 * COLLECT_PARALLEL, as mydumper does it: while s holds FLUSH TABLES WITH READ
 * LOCK no transaction can commit, so the snapshots every connection takes
 * then (START TRANSACTION WITH CONSISTENT SNAPSHOT) are of one instant; the
 * lock is released at once after. While FTWRL waits (for a table another
 * session holds with LOCK TABLES, for DDL), every writer of the server waits
 * behind it, so it may wait FTWRL_WAIT_S at most (lock_wait_timeout for
 * that one statement; less when SOURCE_QUERY_TIMEOUT, the client's read
 * timeout, is shorter). Without the RELOAD privilege, when a managed server
 * refuses FTWRL, or after that wait, s alone reads, in its own snapshot.
 */
#define FTWRL_WAIT_S 2

static int msrc_begin_shared_snapshot(struct source *s, struct source *const *more, int n,
                                      char *why, size_t whylen, struct ierr *e)
{
	char set[96];
	int rc = 0;
	/* Within SOURCE_QUERY_TIMEOUT, the client's read timeout. */
	int64_t wait = FTWRL_WAIT_S;

	if (s->query_timeout > 0 && wait >= s->query_timeout)
		wait = s->query_timeout > 1 ? s->query_timeout - 1 : 1;
	snprintf(set, sizeof(set),
	         "SET @ingesta_lwt = @@session.lock_wait_timeout, "
	         "SESSION lock_wait_timeout = %lld",
	         (long long)wait);
	if (exec_cmd(s, set, e) != 0)
		return -1;
	if (exec_cmd(s, "FLUSH TABLES WITH READ LOCK", e) != 0) {
		unsigned err = mysql_errno(s->conn);

		/* 1227 ER_SPECIFIC_ACCESS_DENIED_ERROR, 1045 ER_ACCESS_DENIED_ERROR,
		 * 1205 ER_LOCK_WAIT_TIMEOUT */
		if (err != 1227 && err != 1045 && err != 1205)
			return ierr_prefix(e, "FLUSH TABLES WITH READ LOCK");
		if (err == 1205)
			snprintf(why, whylen,
			         "FLUSH TABLES WITH READ LOCK waited %lld s (a table locked by "
			         "another session, or DDL running) and gave up",
			         (long long)wait);
		else
			snprintf(why, whylen,
			         "FLUSH TABLES WITH READ LOCK refused (the RELOAD privilege is "
			         "needed for one snapshot across connections): %s",
			         mysql_error(s->conn));
		if (exec_cmd(s, "SET SESSION lock_wait_timeout = @ingesta_lwt", e) != 0)
			return -1;
		return msrc_begin_snapshot(s, e) == 0 ? 1 : -1;
	}
	rc = exec_cmd(s, "SET SESSION lock_wait_timeout = @ingesta_lwt", e);
	if (rc == 0)
		rc = msrc_begin_snapshot(s, e);
	for (int i = 0; i < n && rc == 0; i++)
		rc = msrc_begin_snapshot(more[i], e);
	{
		struct ierr e2;

		if (exec_cmd(s, "UNLOCK TABLES", &e2) != 0 && rc == 0) {
			*e = e2;
			rc = -1;
		}
	}
	return rc;
}

/* ---- per-table plan ------------------------------------------------------------ */

static bool attr_is(const MYSQL_FIELD *f, enum mariadb_field_attr_t which, const char *want)
{
	MARIADB_CONST_STRING v = {NULL, 0};

	if (mariadb_field_attr(&v, f, which) != 0 || v.str == NULL)
		return false;
	return v.length == strlen(want) && strncasecmp(v.str, want, v.length) == 0;
}

static bool is_string_type(enum enum_field_types t)
{
	switch (t) {
	case MYSQL_TYPE_VARCHAR:
	case MYSQL_TYPE_VAR_STRING:
	case MYSQL_TYPE_STRING:
	case MYSQL_TYPE_TINY_BLOB:
	case MYSQL_TYPE_MEDIUM_BLOB:
	case MYSQL_TYPE_LONG_BLOB:
	case MYSQL_TYPE_BLOB:
		return true;
	default:
		return false;
	}
}

static enum mysql_conv conv_for(const MYSQL_FIELD *f, bool json)
{
	bool is_unsigned = (f->flags & UNSIGNED_FLAG) != 0;

	if (json)
		return MYC_JSON;
	switch (f->type) {
	case MYSQL_TYPE_TINY:
	case MYSQL_TYPE_SHORT:
	case MYSQL_TYPE_INT24:
	case MYSQL_TYPE_LONG:
	case MYSQL_TYPE_LONGLONG:
		return is_unsigned ? MYC_UINT : MYC_INT;
	case MYSQL_TYPE_YEAR:
		return MYC_INT;
	case MYSQL_TYPE_FLOAT:
		return MYC_FLOAT;
	case MYSQL_TYPE_DOUBLE:
		return MYC_DOUBLE;
	case MYSQL_TYPE_DECIMAL:
	case MYSQL_TYPE_NEWDECIMAL:
		return MYC_DECIMAL;
	case MYSQL_TYPE_BIT:
		return MYC_BIT;
	case MYSQL_TYPE_DATE:
	case MYSQL_TYPE_NEWDATE:
		return MYC_DATE;
	case MYSQL_TYPE_DATETIME:
	case MYSQL_TYPE_DATETIME2:
		return MYC_DATETIME;
	case MYSQL_TYPE_TIMESTAMP:
	case MYSQL_TYPE_TIMESTAMP2:
		return MYC_TIMESTAMP;
	case MYSQL_TYPE_TIME:
	case MYSQL_TYPE_TIME2:
		return MYC_TIME;
	case MYSQL_TYPE_NULL:
		return MYC_NULL;
	case MYSQL_TYPE_JSON:
		return MYC_JSON;
	case MYSQL_TYPE_GEOMETRY:
		/* Only if it ever arrives without ST_AsText: the WKB in hex. */
		return MYC_WKB_HEX;
	default:
		break;
	}
	if (is_string_type(f->type) && f->charsetnr == BINARY_CHARSET_NR &&
	    !(f->flags & (ENUM_FLAG | SET_FLAG)))
		return MYC_BINARY;
	return MYC_STRING;
}

/* `SELECT * FROM t LIMIT 0`: the column metadata, without reading a row. */
static MYSQL_RES *probe_columns(struct source *s, const char *table, struct ierr *e)
{
	MYSQL_RES *res;

	buf_reset(&s->sql);
	buf_puts(&s->sql, "SELECT * FROM ");
	append_ident(&s->sql, table, strlen(table));
	buf_puts(&s->sql, " LIMIT 0");
	if (exec(s, s->sql.data, s->sql.len, table, e) != 0)
		return NULL;
	res = mysql_store_result(s->conn); /* zero rows */
	if (res == NULL)
		fail_conn(s, table, e);
	return res;
}

/* MariaDB without extended metadata (before 10.5): JSON columns are LONGTEXT
 * with a CHECK (json_valid(`col`)). Marks json[i] for such columns. */
static int json_from_checks(struct source *s, const char *table, MYSQL_RES *probe, bool *json,
                            struct ierr *e)
{
	unsigned n = mysql_num_fields(probe);
	struct buf want = {0};
	MYSQL_RES *res;
	MYSQL_ROW row;

	buf_reset(&s->sql);
	buf_puts(&s->sql, "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS "
	                  "WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = ");
	append_literal(s, &s->sql, table);
	/* The information_schema collation is case-insensitive; names are not. */
	buf_puts(&s->sql, " AND BINARY TABLE_NAME = BINARY ");
	append_literal(s, &s->sql, table);
	if (exec(s, s->sql.data, s->sql.len, table, e) != 0)
		return -1;
	res = mysql_store_result(s->conn); /* a few rows at most */
	if (res == NULL)
		return fail_conn(s, table, e);
	while ((row = mysql_fetch_row(res)) != NULL) {
		if (row[0] == NULL)
			continue;
		for (unsigned i = 0; i < n; i++) {
			const MYSQL_FIELD *f = mysql_fetch_field_direct(probe, i);
			if (!is_string_type(f->type) || f->charsetnr == BINARY_CHARSET_NR)
				continue;
			buf_reset(&want);
			buf_puts(&want, "json_valid(");
			append_ident(&want, f->name, f->name_length);
			buf_putc(&want, ')');
			if (strcasecmp(row[0], buf_cstr(&want)) == 0)
				json[i] = true;
		}
	}
	mysql_free_result(res);
	buf_free(&want);
	return 0;
}

/* Which probe columns hold JSON (MySQL's JSON type is found by conv_for). */
static int find_json_columns(struct source *s, const char *table, MYSQL_RES *probe, bool *json,
                             struct ierr *e)
{
	unsigned n = mysql_num_fields(probe);
	bool need_checks = false;

	if (!s->mariadb)
		return 0;
	for (unsigned i = 0; i < n; i++) {
		const MYSQL_FIELD *f = mysql_fetch_field_direct(probe, i);
		if (attr_is(f, MARIADB_FIELD_ATTR_FORMAT_NAME, "json"))
			json[i] = true;
		else if (!s->ext_metadata && is_string_type(f->type))
			need_checks = true;
	}
	if (need_checks)
		return json_from_checks(s, table, probe, json, e);
	return 0;
}

/* The data query: `SELECT *`, or a column list when a column needs the server
 * to convert it: GEOMETRY as ST_AsText(col) (WKT: readable, and what Athena's
 * geospatial functions take), FLOAT as CAST(col AS DOUBLE) because the text
 * protocol rounds FLOAT to 6 digits (16777216 arrives as "16777200") while the
 * double of a float is exact and converts back to the very same float. */
static void build_select(struct source *s, const char *table, MYSQL_RES *probe)
{
	unsigned n = mysql_num_fields(probe);
	bool any_wrapped = false;

	for (unsigned i = 0; i < n; i++) {
		enum enum_field_types t = mysql_fetch_field_direct(probe, i)->type;
		if (t == MYSQL_TYPE_GEOMETRY || t == MYSQL_TYPE_FLOAT)
			any_wrapped = true;
	}
	buf_reset(&s->sql);
	buf_puts(&s->sql, "SELECT ");
	if (!any_wrapped) {
		buf_putc(&s->sql, '*');
	} else {
		for (unsigned i = 0; i < n; i++) {
			const MYSQL_FIELD *f = mysql_fetch_field_direct(probe, i);
			if (i > 0)
				buf_puts(&s->sql, ", ");
			if (f->type == MYSQL_TYPE_GEOMETRY || f->type == MYSQL_TYPE_FLOAT) {
				buf_puts(&s->sql,
				         f->type == MYSQL_TYPE_FLOAT ? "CAST(" : "ST_AsText(");
				append_ident(&s->sql, f->name, f->name_length);
				buf_puts(&s->sql,
				         f->type == MYSQL_TYPE_FLOAT ? " AS DOUBLE) AS " : ") AS ");
			}
			append_ident(&s->sql, f->name, f->name_length);
		}
	}
	buf_puts(&s->sql, " FROM ");
	append_ident(&s->sql, table, strlen(table));
}

/* Choose each column's converter and precompute its key prefix. */
static int build_plan(struct source *s, const char *table, MYSQL_RES *res, MYSQL_RES *probe,
                      const bool *json, struct plan *p, struct ierr *e)
{
	unsigned n = mysql_num_fields(res);

	/* Cannot happen inside the snapshot (the probe holds the metadata lock). */
	if (n != mysql_num_fields(probe))
		return ierr_set(e, IERR_SOURCE,
		                "mysql %s: table \"%s\": columns changed while reading", s->label,
		                table);
	p->n = n;
	p->cols = calloc(n ? n : 1, sizeof(*p->cols));
	if (p->cols == NULL)
		return ierr_set(e, IERR_INTERNAL, "mysql: out of memory");
	for (unsigned i = 0; i < n; i++) {
		const MYSQL_FIELD *f = mysql_fetch_field_direct(res, i);
		struct column *c = &p->cols[i];

		if (mysql_fetch_field_direct(probe, i)->type == MYSQL_TYPE_FLOAT)
			c->conv = MYC_FLOAT; /* selected as CAST(col AS DOUBLE) */
		else
			c->conv = conv_for(f, json[i]);
		c->key_off = p->keys.len;
		buf_putc(&p->keys, i == 0 ? '{' : ',');
		json_key(&p->keys, f->name, f->name_length);
		c->key_len = p->keys.len - c->key_off;
	}
	return 0;
}

static void plan_free(struct plan *p)
{
	free(p->cols);
	buf_free(&p->keys);
	memset(p, 0, sizeof(*p));
}

/* ---- read_table ------------------------------------------------------------------ */

/* Stream the rows of the started query into w. */
static int stream_rows(struct source *s, const char *table, MYSQL_RES *res, const struct plan *p,
                       struct table_writer *w, struct ierr *e)
{
	const struct norm_opts *opts = table_writer_opts(w);
	struct lossy *st = table_writer_lossy(w);
	MYSQL_ROW row;

	while ((row = mysql_fetch_row(res)) != NULL) {
		unsigned long *lens = mysql_fetch_lengths(res);
		struct buf *b = table_writer_row_begin(w);

		for (unsigned i = 0; i < p->n; i++) {
			const struct column *c = &p->cols[i];
			buf_append(b, p->keys.data + c->key_off, c->key_len);
			if (row[i] == NULL)
				json_null(b);
			else
				mysql_value_put(b, c->conv, row[i], lens[i], opts, st);
		}
		if (p->n == 0)
			buf_putc(b, '{');
		buf_putc(b, '}');
		if (table_writer_row_end(w, e) != 0) {
			/* Stop the server's stream now: mysql_free_result() would
			 * otherwise read every remaining row. The run is over. */
			mariadb_cancel(s->conn);
			s->broken = true;
			return -1;
		}
	}
	/* With mysql_use_result, a lost or killed connection ends the loop too. */
	if (mysql_errno(s->conn) != 0)
		return fail_conn(s, table, e);
	return 0;
}

/* The rows of `table`: all (where NULL) or those of the WHERE clause where. */
static int read_where(struct source *s, const char *table, const char *where,
                      struct table_writer *w, struct ierr *e)
{
	struct plan p = {0};
	MYSQL_RES *probe, *res;
	bool *json;
	unsigned n;
	int rc = -1;

	if (s->broken)
		return ierr_set(e, IERR_SOURCE, "mysql %s: table \"%s\": connection was cancelled",
		                s->label, table);
	probe = probe_columns(s, table, e);
	if (probe == NULL)
		return -1;
	n = mysql_num_fields(probe);
	json = calloc(n ? n : 1, sizeof(bool));
	if (json == NULL) {
		mysql_free_result(probe);
		return ierr_set(e, IERR_INTERNAL, "mysql: out of memory");
	}
	if (find_json_columns(s, table, probe, json, e) != 0)
		goto out;
	build_select(s, table, probe);
	if (where != NULL)
		buf_puts(&s->sql, where);
	if (exec(s, s->sql.data, s->sql.len, table, e) != 0)
		goto out;
	res = mysql_use_result(s->conn);
	if (res == NULL) {
		fail_conn(s, table, e);
		goto out;
	}
	if (build_plan(s, table, res, probe, json, &p, e) == 0)
		rc = stream_rows(s, table, res, &p, w, e);
	mysql_free_result(res);
out:
	plan_free(&p);
	free(json);
	mysql_free_result(probe);
	return rc;
}

static int msrc_read_table(struct source *s, const char *table, struct table_writer *w,
                           struct ierr *e)
{
	return read_where(s, table, NULL, w, e);
}

/* ---- incremental: high-water mark and range reads ------------------------------------ */

static MYSQL_RES *info_query(struct source *s, const char *table, const char *select,
                             const char *tail);

/*
 * Values are never pasted into SQL. The rows are streamed with
 * mysql_use_result() over the text protocol (bounded memory, and the text ->
 * JSON conversions of mysql_value.c); a prepared statement would stream too,
 * but over the binary protocol, whose values need a second set of
 * conversions, and mysql_stmt_store_result() would hold the whole range in
 * memory. So the values are bound as parameters of a prepared
 * `SET @ingesta_after = ?, @ingesta_through = ?, @ingesta_lag_us = ?`
 * (user variables live in the session, outside the snapshot's data), and the
 * streamed query compares the column with the variable read back as the
 * column's type: CAST(@ingesta_after AS SIGNED | UNSIGNED | DECIMAL(p,s) |
 * DATE | DATETIME(n)), or for strings CONVERT(@ingesta_after USING <cs>)
 * COLLATE <the column's collation> (incr_mysql_value_sql()). The only text
 * pasted is the column name quoted with backticks and the type, charset and
 * collation names from information_schema (checked to be plain names).
 * Values travel in the server's text form ("2026-01-01 10:00:00.123456", in
 * the session's UTC for TIMESTAMP).
 */
static int bind_vars(struct source *s, const char *table, const struct cursor_val *after,
                     const struct cursor_val *through, long long lag_us, struct ierr *e)
{
	static const char sql[] =
	    "SET @ingesta_after = ?, @ingesta_through = ?, @ingesta_lag_us = ?";
	MYSQL_STMT *st = mysql_stmt_init(s->conn);
	MYSQL_BIND b[3];
	my_bool null_after = after == NULL, null_through = through == NULL;
	unsigned long len_after = after ? (unsigned long)strlen(after->text) : 0;
	unsigned long len_through = through ? (unsigned long)strlen(through->text) : 0;
	int rc = -1;

	if (st == NULL)
		return ierr_set(e, IERR_INTERNAL, "mysql: out of memory");
	memset(b, 0, sizeof(b));
	b[0].buffer_type = MYSQL_TYPE_STRING;
	b[0].buffer = after ? after->text : NULL;
	b[0].buffer_length = len_after;
	b[0].length = &len_after;
	b[0].is_null = &null_after;
	b[1].buffer_type = MYSQL_TYPE_STRING;
	b[1].buffer = through ? through->text : NULL;
	b[1].buffer_length = len_through;
	b[1].length = &len_through;
	b[1].is_null = &null_through;
	b[2].buffer_type = MYSQL_TYPE_LONGLONG;
	b[2].buffer = &lag_us;
	if (mysql_stmt_prepare(st, sql, (unsigned long)strlen(sql)) != 0 ||
	    mysql_stmt_bind_param(st, b) != 0 || mysql_stmt_execute(st) != 0)
		ierr_set(e, IERR_SOURCE, "mysql %s: table \"%s\": binding the range: %s", s->label,
		         table, mysql_stmt_error(st));
	else
		rc = 0;
	mysql_stmt_close(st);
	return rc;
}

/* The cursor column's value expression (incr_mysql_value_sql()) into out;
 * strings take the column's charset and collation from information_schema. */
static int value_expr(struct source *s, const char *table, const struct range_req *rq,
                      struct buf *out, struct ierr *e)
{
	char cs[128] = "", coll[128] = "";

	if (rq->kind == CK_STRING) {
		struct buf tail = {0};
		MYSQL_RES *res;
		MYSQL_ROW row;

		buf_puts(&tail, " AND COLUMN_NAME = ");
		append_literal(s, &tail, rq->column);
		buf_puts(&tail, " AND BINARY COLUMN_NAME = BINARY ");
		append_literal(s, &tail, rq->column);
		res = info_query(s, table,
		                 "SELECT CHARACTER_SET_NAME, COLLATION_NAME "
		                 "FROM information_schema.COLUMNS",
		                 buf_cstr(&tail));
		buf_free(&tail);
		if (res == NULL)
			return fail_conn(s, table, e);
		row = mysql_fetch_row(res);
		if (row != NULL && row[0] != NULL && row[1] != NULL) {
			snprintf(cs, sizeof(cs), "%s", row[0]);
			snprintf(coll, sizeof(coll), "%s", row[1]);
		}
		mysql_free_result(res);
	}
	if (incr_mysql_value_sql(rq->type, cs, coll, out) != 0)
		return ierr_set(e, IERR_SOURCE,
		                "mysql %s: table \"%s\": cursor column \"%s\" of type \"%s\" "
		                "(charset \"%s\", collation \"%s\"): no comparison for it",
		                s->label, table, rq->column, rq->type, cs, coll);
	return 0;
}

static int msrc_cursor_high(struct source *s, const char *table, const struct range_req *rq,
                            struct cursor_val *high, bool *has_nulls, struct ierr *e)
{
	struct buf sql = {0}, col = {0}, from = {0}, expr = {0};
	bool lag = rq->lag_ms > 0 && (rq->kind == CK_DATE || rq->kind == CK_DATETIME);
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;
	int rc = -1;

	high->text = NULL;
	high->kind = rq->kind == CK_INT ? 'i' : 't';
	if (s->broken)
		return ierr_set(e, IERR_SOURCE, "mysql %s: table \"%s\": connection was cancelled",
		                s->label, table);
	append_ident(&col, rq->column, strlen(rq->column));
	buf_puts(&from, " FROM ");
	append_ident(&from, table, strlen(table));
	if (value_expr(s, table, rq, &expr, e) != 0 ||
	    bind_vars(s, table, rq->after, NULL, (long long)rq->lag_ms * 1000, e) != 0)
		goto out;
	buf_printf(&sql, "SELECT max(%s)", buf_cstr(&col));
	if (has_nulls)
		buf_printf(&sql, ", EXISTS (SELECT 1%s WHERE %s IS NULL)", buf_cstr(&from),
		           buf_cstr(&col));
	buf_printf(&sql, "%s WHERE %s IS NOT NULL", buf_cstr(&from), buf_cstr(&col));
	if (rq->after) {
		const char *hole = strchr(buf_cstr(&expr), '?');

		buf_printf(&sql, " AND %s > %.*s@ingesta_after%s", buf_cstr(&col),
		           (int)(hole - expr.data), expr.data, hole + 1);
	}
	if (lag)
		buf_printf(&sql,
		           " AND %s <= @ingesta_snapshot_at - INTERVAL @ingesta_lag_us MICROSECOND",
		           buf_cstr(&col));
	if (exec(s, sql.data, sql.len, table, e) != 0)
		goto out;
	res = mysql_store_result(s->conn); /* one row */
	if (res == NULL || (row = mysql_fetch_row(res)) == NULL) {
		fail_conn(s, table, e);
		goto out;
	}
	if (row[0] != NULL)
		high->text = xstrdup(row[0]);
	if (has_nulls)
		*has_nulls = row[1] != NULL && strcmp(row[1], "0") != 0;
	rc = 0;
out:
	if (res)
		mysql_free_result(res);
	buf_free(&sql);
	buf_free(&col);
	buf_free(&from);
	buf_free(&expr);
	return rc;
}

static int msrc_read_range(struct source *s, const char *table, const struct range_req *rq,
                           struct table_writer *w, struct ierr *e)
{
	struct buf col = {0}, expr = {0}, where = {0};
	const struct cursor_val *after = rq->after && !rq->snapshot ? rq->after : NULL;
	int rc = -1;

	if (s->broken)
		return ierr_set(e, IERR_SOURCE, "mysql %s: table \"%s\": connection was cancelled",
		                s->label, table);
	append_ident(&col, rq->column, strlen(rq->column));
	if (value_expr(s, table, rq, &expr, e) != 0 ||
	    bind_vars(s, table, after, rq->through, 0, e) != 0)
		goto out;
	incr_where_sql(DIALECT_MYSQL, buf_cstr(&col), buf_cstr(&expr), rq->snapshot, after != NULL,
	               rq->through != NULL, &where);
	rc = read_where(s, table, buf_cstr(&where), w, e);
out:
	buf_free(&col);
	buf_free(&expr);
	buf_free(&where);
	return rc;
}

/* ---- splitting a table (COLLECT_PARALLEL) ---------------------------------------- */

/* InnoDB's DATA_LENGTH: statistics, refreshed by the server as the table
 * changes; good enough to decide whether splitting pays. */
static int msrc_table_bytes(struct source *s, const char *table, int64_t *bytes, struct ierr *e)
{
	MYSQL_RES *res = info_query(s, table, "SELECT DATA_LENGTH FROM information_schema.TABLES",
	                            " AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED')");
	MYSQL_ROW row;

	*bytes = -1;
	if (res == NULL)
		return fail_conn(s, table, e);
	row = mysql_fetch_row(res);
	if (row != NULL && row[0] != NULL)
		*bytes = strtoll(row[0], NULL, 10);
	mysql_free_result(res);
	return 0;
}

static int msrc_key_bounds(struct source *s, const char *table, const char *column, int64_t *lo,
                           int64_t *hi, bool *empty, struct ierr *e)
{
	MYSQL_RES *res;
	MYSQL_ROW row;
	char *end1, *end2;
	int rc = -1;

	*empty = true;
	buf_reset(&s->sql);
	buf_puts(&s->sql, "SELECT MIN(");
	append_ident(&s->sql, column, strlen(column));
	buf_puts(&s->sql, "), MAX(");
	append_ident(&s->sql, column, strlen(column));
	buf_puts(&s->sql, ") FROM ");
	append_ident(&s->sql, table, strlen(table));
	if (exec(s, s->sql.data, s->sql.len, table, e) != 0)
		return -1;
	res = mysql_store_result(s->conn);
	if (res == NULL)
		return fail_conn(s, table, e);
	row = mysql_fetch_row(res);
	if (row != NULL && row[0] != NULL && row[1] != NULL) {
		errno = 0;
		*lo = strtoll(row[0], &end1, 10);
		*hi = strtoll(row[1], &end2, 10);
		/* BIGINT UNSIGNED beyond INT64_MAX: not split. */
		if (errno == 0 && *end1 == '\0' && *end2 == '\0')
			*empty = false;
	}
	rc = 0;
	mysql_free_result(res);
	return rc;
}

/* ---- table_schema ------------------------------------------------------------------ */

/* Run a query on information_schema about `table` and keep its (few) rows. */
static MYSQL_RES *info_query(struct source *s, const char *table, const char *select,
                             const char *tail)
{
	buf_reset(&s->sql);
	buf_puts(&s->sql, select);
	buf_puts(&s->sql, " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ");
	append_literal(s, &s->sql, table);
	/* The information_schema collation is case-insensitive; names are not. */
	buf_puts(&s->sql, " AND BINARY TABLE_NAME = BINARY ");
	append_literal(s, &s->sql, table);
	buf_puts(&s->sql, tail);
	if (mysql_real_query(s->conn, s->sql.data, (unsigned long)s->sql.len) != 0)
		return NULL;
	return mysql_store_result(s->conn);
}

/*
 * information_schema.COLUMNS in ORDINAL_POSITION order, COLUMN_TYPE as the
 * server spells it ("int(11)", "bigint(20) unsigned", "decimal(12,2)",
 * "enum('a','b')", "datetime(6)", "tinyint(1)" for BOOLEAN; MariaDB's JSON is
 * "longtext"), IS_NULLABLE; invisible columns left out as SELECT * leaves
 * them out. Primary key from information_schema.STATISTICS (index PRIMARY, by
 * SEQ_IN_INDEX). information_schema is not versioned like InnoDB rows, so the
 * table's metadata lock is taken first (`SELECT * ... LIMIT 0`, held until the
 * snapshot's transaction ends): what is read here is then the definition the
 * rows are read with, and the column count is checked against it.
 */
static int msrc_table_schema(struct source *s, const char *table, struct table_schema *out,
                             struct ierr *e)
{
	MYSQL_RES *probe, *res;
	MYSQL_ROW row;
	unsigned nfields;

	if (s->broken)
		return ierr_set(e, IERR_SOURCE, "mysql %s: table \"%s\": connection was cancelled",
		                s->label, table);
	probe = probe_columns(s, table, e);
	if (probe == NULL)
		return -1;
	nfields = mysql_num_fields(probe);
	mysql_free_result(probe);

	res = info_query(s, table,
	                 "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, EXTRA "
	                 "FROM information_schema.COLUMNS",
	                 " ORDER BY ORDINAL_POSITION");
	if (res == NULL)
		goto fail;
	while ((row = mysql_fetch_row(res)) != NULL) {
		unsigned long *lens = mysql_fetch_lengths(res);

		if (row[0] == NULL || row[1] == NULL)
			continue;
		if (row[3] != NULL && strstr(row[3], "INVISIBLE") != NULL)
			continue;
		table_schema_add_column(out, row[0], lens[0], row[1],
		                        row[2] == NULL || strcmp(row[2], "NO") != 0);
	}
	mysql_free_result(res);
	if (out->ncols != nfields)
		return ierr_set(e, IERR_SOURCE,
		                "mysql %s: table \"%s\": information_schema lists %zu columns, "
		                "SELECT * returns %u",
		                s->label, table, out->ncols, nfields);

	res = info_query(s, table, "SELECT COLUMN_NAME FROM information_schema.STATISTICS",
	                 " AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX");
	if (res == NULL)
		goto fail;
	while ((row = mysql_fetch_row(res)) != NULL) {
		if (row[0] != NULL)
			table_schema_add_pk(out, row[0]);
	}
	mysql_free_result(res);
	return 0;
fail:
	return fail_conn(s, table, e);
}

const struct source_ops source_mysql = {
    .db_type = "mysql",
    .legacy_bucket_key = "S3_BUCKET_MS1",
    .open = msrc_open,
    .list_tables = msrc_list_tables,
    .begin_snapshot = msrc_begin_snapshot,
    .begin_shared_snapshot = msrc_begin_shared_snapshot,
    .table_bytes = msrc_table_bytes,
    .key_bounds = msrc_key_bounds,
    .read_table = msrc_read_table,
    .table_schema = msrc_table_schema,
    .cursor_high = msrc_cursor_high,
    .read_range = msrc_read_range,
    .close = msrc_close,
};
