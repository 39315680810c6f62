/*
 * src_postgres.c - the PostgreSQL source driver (libpq).
 *
 * One connection per run, opened with PQconnectdbParams (POSTGRES_DSN, when
 * set, is expanded as the first dbname so its own keys win over the defaults
 * listed before it; client_encoding=UTF8 is placed after it and always wins).
 * The session is fixed so no value depends on the server's or loader's
 * settings: TimeZone UTC, DateStyle ISO, IntervalStyle iso_8601 (intervals are
 * ISO 8601 durations as TYPES.md wants), bytea_output hex, extra_float_digits 3
 * (shortest exact floats, which pg_text.c re-parses and rewrites in the
 * ECMAScript form). begin_snapshot() opens one REPEATABLE READ READ ONLY
 * transaction and takes its snapshot at once; every table is read in it. With
 * COLLECT_PARALLEL the first connection exports that snapshot
 * (pg_export_snapshot()) and the others import it, so every table is still
 * read at one instant.
 *
 * Discovery: relkind r and p (views and populated materialized views with
 * INCLUDE_VIEWS) in the POSTGRES_SCHEMAS schemas; a partition whose parent is
 * itself listed is skipped (the parent's rows include it), and plain tables are
 * read with ONLY so rows of inheritance children are not read twice. The S3
 * name is `table` in public and `schema.table` elsewhere; two tables that would
 * get the same name fail discovery rather than mix their rows.
 *
 * Rows: `COPY (SELECT * FROM [ONLY] "schema"."table") TO STDOUT` in text
 * format. COPY streams the table as fast as the server can produce it while
 * the client converts (no per-batch round trips as with a cursor, no per-row
 * PGresult as with single-row mode), and libpq holds one row at a time, so
 * memory is bounded by the largest row whatever the table size. Column types
 * come from `SELECT * ... LIMIT 0` in the same transaction; each type OID is
 * mapped once to a pg_text.c converter (non-builtin types, domains and their
 * arrays through pg_type, cached for the run). A table costs two statements,
 * the probe and the COPY: table_schema() reads the catalog of many tables in
 * one query and leaves its probe to the read that follows.
 *
 * SOURCE_QUERY_TIMEOUT is the server's lock_timeout and, plus one second of
 * grace so a lock wait fails with the server's message, an idle timeout: the
 * client polls the socket and gives up when the server sends nothing for that
 * long. A long table that keeps streaming is never cut off, as with the MySQL
 * driver. SIGTERM/SIGINT interrupt a wait at once.
 *
 * Errors come back as IERR_SOURCE "postgresql <host>:<port>/<db>: table "t":
 * <first line of the server/libpq message>", scrubbed of registered secrets
 * (the password inside POSTGRES_DSN is registered too).
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "buf.h"
#include "config.h"
#include "err.h"
#include "json.h"
#include "log.h"
#include "pg_text.h"
#include "source.h"
#include "util.h"
#include "writer.h"

struct pg_table {
	char *name; /* as in S3: "t" or "schema.t" */
	char *schema;
	char *rel;
	char relkind;
};

struct type_ent {
	Oid oid;
	struct pg_col col;
};

/* The catalog's columns of tables[lo..hi) read in one query (cat_sql): the
 * rows of tables[lo + j] are res rows first[j] .. first[j] + count[j] - 1. */
struct col_cache {
	PGresult *res;
	size_t lo, hi;
	int *first;
	int *count;
};

struct source {
	PGconn *conn;
	char label[512]; /* "host:port/db", for messages */
	bool include_views;
	bool broken; /* a read failed mid-stream: the transaction is unusable */
	bool listed;
	int timeout_ms; /* SOURCE_QUERY_TIMEOUT; -1 = none */
	int wait_ms;    /* poll limit: timeout_ms plus a grace (see pg_open) */
	char *schemas;  /* POSTGRES_SCHEMAS as a text[] literal */
	struct pg_table *tables;
	size_t ntables;
	struct type_ent *types;
	size_t ntypes, captypes;
	struct buf sql;
	/* Both valid in the current snapshot only (snapshot_reset). */
	struct col_cache cat;
	PGresult *probe; /* table_schema's probe of probe_t, for the read that follows */
	const struct pg_table *probe_t;
};

static void snapshot_reset(struct source *s)
{
	PQclear(s->cat.res);
	free(s->cat.first);
	free(s->cat.count);
	memset(&s->cat, 0, sizeof(s->cat));
	PQclear(s->probe);
	s->probe = NULL;
	s->probe_t = NULL;
}

/* ---- errors ------------------------------------------------------------------ */

/* The first line of a libpq/server message, trailing blanks removed. */
static void first_line(char *out, size_t n, const char *msg)
{
	size_t len;

	if (msg == NULL || msg[0] == '\0')
		msg = "unknown error";
	len = strcspn(msg, "\n");
	while (len > 0 && (msg[len - 1] == ' ' || msg[len - 1] == '\r'))
		len--;
	if (len >= n)
		len = n - 1;
	memcpy(out, msg, len);
	out[len] = '\0';
}

/* Fill *e from a failed result (res may be NULL: the connection's message). */
static int fail_res(struct source *s, const PGresult *res, const char *table, struct ierr *e)
{
	const char *prim = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	char msg[600];

	if (prim != NULL && prim[0] != '\0')
		first_line(msg, sizeof(msg), prim);
	else if (res != NULL && PQresultErrorMessage(res)[0] != '\0')
		first_line(msg, sizeof(msg), PQresultErrorMessage(res));
	else
		first_line(msg, sizeof(msg), PQerrorMessage(s->conn));
	if (table != NULL)
		ierr_set(e, IERR_SOURCE, "postgresql %s: table \"%s\": %s", s->label, table, msg);
	else
		ierr_set(e, IERR_SOURCE, "postgresql %s: %s", s->label, msg);
	if (e != NULL)
		log_scrub(e->msg, sizeof(e->msg));
	return -1;
}

static int fail_msg(struct source *s, const char *table, struct ierr *e, const char *msg)
{
	if (table != NULL)
		return ierr_set(e, IERR_SOURCE, "postgresql %s: table \"%s\": %s", s->label, table,
		                msg);
	return ierr_set(e, IERR_SOURCE, "postgresql %s: %s", s->label, msg);
}

/* ---- waiting on the server ------------------------------------------------------ */

/* Wait until the socket is readable, at most the idle timeout. A timeout or a
 * stop request (SIGTERM/SIGINT) marks the connection broken: nothing more is
 * read from it, and close() hangs up, which ends the server's work. */
static int wait_readable(struct source *s, const char *table, struct ierr *e)
{
	struct pollfd p = {.fd = PQsocket(s->conn), .events = POLLIN};
	char msg[128];
	int r;

	if (p.fd < 0)
		return fail_res(s, NULL, table, e);
	for (;;) {
		r = poll(&p, 1, s->wait_ms);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return ierr_errno(e, errno, "postgresql %s: poll", s->label);
		if (r < 0 && !ingesta_stop_requested)
			continue;
		s->broken = true;
		if (r < 0 && table != NULL)
			return ierr_set(e, IERR_INTERRUPTED,
			                "postgresql %s: table \"%s\": stopped by signal", s->label,
			                table);
		if (r < 0)
			return ierr_set(e, IERR_INTERRUPTED, "postgresql %s: stopped by signal",
			                s->label);
		snprintf(msg, sizeof(msg),
		         "no data from the server within SOURCE_QUERY_TIMEOUT (%.1f s)",
		         s->timeout_ms / 1000.0);
		return fail_msg(s, table, e, msg);
	}
}

/* Read until libpq has a whole result (or COPY data) ready. */
static int wait_result(struct source *s, const char *table, struct ierr *e)
{
	while (PQisBusy(s->conn)) {
		if (wait_readable(s, table, e) != 0)
			return -1;
		if (!PQconsumeInput(s->conn))
			return fail_res(s, NULL, table, e);
	}
	return 0;
}

/* Run sql (several statements when params is NULL and nparams 0) and return
 * its last result, which must have status `want` (PGRES_COPY_OUT returns as
 * soon as the COPY starts). NULL with *e set otherwise. */
static PGresult *query(struct source *s, const char *sql, int nparams, const char *const *params,
                       ExecStatusType want, const char *table, struct ierr *e)
{
	PGresult *keep = NULL;
	PGresult *r;
	int sent;

	if (nparams == 0)
		sent = PQsendQuery(s->conn, sql);
	else
		sent = PQsendQueryParams(s->conn, sql, nparams, NULL, params, NULL, NULL, 0);
	if (!sent) {
		fail_res(s, NULL, table, e);
		return NULL;
	}
	for (;;) {
		if (wait_result(s, table, e) != 0) {
			PQclear(keep);
			return NULL;
		}
		r = PQgetResult(s->conn);
		if (r == NULL)
			break;
		if (PQresultStatus(r) == PGRES_COPY_OUT && want == PGRES_COPY_OUT) {
			PQclear(keep);
			return r;
		}
		/* The first error wins; otherwise the last result. */
		if (keep != NULL && PQresultStatus(keep) == PGRES_FATAL_ERROR) {
			PQclear(r);
		} else {
			PQclear(keep);
			keep = r;
		}
	}
	if (keep == NULL || PQresultStatus(keep) != want) {
		fail_res(s, keep, table, e);
		PQclear(keep);
		return NULL;
	}
	return keep;
}

static int command(struct source *s, const char *sql, const char *table, struct ierr *e)
{
	PGresult *r = query(s, sql, 0, NULL, PGRES_COMMAND_OK, table, e);

	PQclear(r);
	return r ? 0 : -1;
}

/* ---- open / close --------------------------------------------------------------- */

/* POSTGRES_SCHEMAS "public, other" -> the text[] literal {"public","other"}. */
static char *schemas_literal(const char *list)
{
	struct buf b = {0};
	const char *p = list;
	bool first = true;

	buf_putc(&b, '{');
	while (*p != '\0') {
		size_t n = strcspn(p, ",");
		const char *q = p;
		size_t m = n;

		while (m > 0 && (*q == ' ' || *q == '\t')) {
			q++;
			m--;
		}
		while (m > 0 && (q[m - 1] == ' ' || q[m - 1] == '\t'))
			m--;
		if (m > 0) {
			if (!first)
				buf_putc(&b, ',');
			first = false;
			buf_putc(&b, '"');
			for (size_t i = 0; i < m; i++) {
				if (q[i] == '"' || q[i] == '\\')
					buf_putc(&b, '\\');
				buf_putc(&b, q[i]);
			}
			buf_putc(&b, '"');
		}
		p += n;
		if (*p == ',')
			p++;
	}
	buf_putc(&b, '}');
	buf_cstr(&b);
	return b.data;
}

/* The DSN's password (if any) joins the registered secrets; a DSN libpq cannot
 * parse is reported without libpq's message, which quotes the text. */
static int check_dsn(const char *dsn, struct ierr *e)
{
	char *err = NULL;
	PQconninfoOption *opts;

	/* libpq's own rule: a database name unless it has '=' or a URI prefix. */
	if (strchr(dsn, '=') == NULL && strncmp(dsn, "postgresql://", 13) != 0 &&
	    strncmp(dsn, "postgres://", 11) != 0)
		return 0;
	opts = PQconninfoParse(dsn, &err);
	if (opts == NULL) {
		PQfreemem(err);
		return ierr_set(e, IERR_CONFIG,
		                "POSTGRES_DSN: not a valid libpq connection string or URI");
	}
	for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
		if (strcmp(o->keyword, "password") == 0 && o->val != NULL)
			log_add_secret(o->val);
	}
	PQconninfoFree(opts);
	return 0;
}

static void set_label(struct source *s, const struct config *cfg)
{
	const char *host = PQhost(s->conn);
	const char *port = PQport(s->conn);
	const char *db = PQdb(s->conn);

	if (host == NULL || host[0] == '\0')
		host = config_str(cfg, "POSTGRES_HOST");
	if (port == NULL || port[0] == '\0')
		port = config_str(cfg, "POSTGRES_PORT");
	if (db == NULL)
		db = config_str(cfg, "POSTGRES_DB");
	snprintf(s->label, sizeof(s->label), "%s:%s/%s", host, port, db);
	log_scrub(s->label, sizeof(s->label));
}

static int setup_session(struct source *s, int64_t timeout_ms, struct ierr *e)
{
	char sql[512];

	snprintf(sql, sizeof(sql),
	         "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; "
	         "SET IntervalStyle = 'iso_8601'; SET extra_float_digits = 3; "
	         "SET bytea_output = 'hex'; SET statement_timeout = 0; "
	         "SET lock_timeout = %lld; SET idle_in_transaction_session_timeout = 0",
	         (long long)timeout_ms);
	return command(s, sql, NULL, e);
}

/* Server NOTICEs (a view's function may RAISE them) go to the log, not to
 * libpq's default of raw stderr lines. */
static void on_notice(void *arg, const char *message)
{
	struct source *s = arg;
	char line[600];

	first_line(line, sizeof(line), message);
	log_scrub(line, sizeof(line));
	log_event(LOG_DEBUG, "postgresql notice", "source", s->label, "message", line, NULL);
}

static void pg_close(struct source *s);

static struct source *pg_open(const struct config *cfg, struct ierr *e)
{
	const char *kw[16];
	const char *val[16];
	char timeout[32];
	const char *dsn = config_str(cfg, "POSTGRES_DSN");
	int64_t qt = config_int(cfg, "SOURCE_QUERY_TIMEOUT"); /* ms, like every duration key */
	int64_t ct = config_int(cfg, "SOURCE_CONNECT_TIMEOUT");
	struct source *s;
	int n = 0;

	if (dsn[0] != '\0' && check_dsn(dsn, e) != 0)
		return NULL;
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		ierr_set(e, IERR_INTERNAL, "postgresql: out of memory");
		return NULL;
	}
	s->include_views = config_bool(cfg, "INCLUDE_VIEWS");
	s->timeout_ms = qt <= 0 ? -1 : qt > INT_MAX / 2 ? INT_MAX / 2 : (int)qt;
	/* The client waits a little longer than the server's lock_timeout, so a
	 * lock wait fails with the server's own message. */
	s->wait_ms = s->timeout_ms < 0 ? -1 : s->timeout_ms + 1000;
	s->schemas = schemas_literal(config_str(cfg, "POSTGRES_SCHEMAS"));
	/* libpq wants whole seconds; 0 waits forever, as SOURCE_CONNECT_TIMEOUT=0 means. */
	snprintf(timeout, sizeof(timeout), "%lld", (long long)((ct + 999) / 1000));

#define KV(k, v)                                                                                   \
	do {                                                                                       \
		kw[n] = (k);                                                                       \
		val[n] = (v);                                                                      \
		n++;                                                                               \
	} while (0)
	/* Before dbname: a DSN may override these. */
	KV("application_name", "ingesta");
	KV("connect_timeout", timeout);
	if (dsn[0] != '\0') {
		if (config_is_set(cfg, "POSTGRES_SSLMODE"))
			KV("sslmode", config_str(cfg, "POSTGRES_SSLMODE"));
		if (config_str(cfg, "POSTGRES_SSLROOTCERT")[0] != '\0')
			KV("sslrootcert", config_str(cfg, "POSTGRES_SSLROOTCERT"));
		KV("dbname", dsn);
	} else {
		KV("host", config_str(cfg, "POSTGRES_HOST"));
		KV("port", config_str(cfg, "POSTGRES_PORT"));
		if (config_str(cfg, "POSTGRES_USER")[0] != '\0')
			KV("user", config_str(cfg, "POSTGRES_USER"));
		if (config_str(cfg, "POSTGRES_PASSWORD")[0] != '\0')
			KV("password", config_str(cfg, "POSTGRES_PASSWORD"));
		if (config_str(cfg, "POSTGRES_DB")[0] != '\0')
			KV("dbname", config_str(cfg, "POSTGRES_DB"));
		KV("sslmode", config_str(cfg, "POSTGRES_SSLMODE"));
		if (config_str(cfg, "POSTGRES_SSLROOTCERT")[0] != '\0')
			KV("sslrootcert", config_str(cfg, "POSTGRES_SSLROOTCERT"));
	}
	/* After dbname: nothing may change these. */
	KV("client_encoding", "UTF8");
	KV(NULL, NULL);
#undef KV

	/* expand_dbname only for the DSN: a plain database name is never parsed. */
	s->conn = PQconnectdbParams(kw, val, dsn[0] != '\0');
	if (s->conn == NULL) {
		ierr_set(e, IERR_INTERNAL, "postgresql: out of memory");
		pg_close(s);
		return NULL;
	}
	set_label(s, cfg);
	if (PQstatus(s->conn) != CONNECTION_OK) {
		fail_res(s, NULL, NULL, e);
		pg_close(s);
		return NULL;
	}
	PQsetNoticeProcessor(s->conn, on_notice, s);
	if (setup_session(s, qt, e) != 0) {
		pg_close(s);
		return NULL;
	}
	return s;
}

static void pg_close(struct source *s)
{
	if (s == NULL)
		return;
	snapshot_reset(s);
	if (s->conn != NULL)
		PQfinish(s->conn);
	for (size_t i = 0; i < s->ntables; i++) {
		free(s->tables[i].name);
		free(s->tables[i].schema);
		free(s->tables[i].rel);
	}
	free(s->tables);
	free(s->types);
	free(s->schemas);
	buf_free(&s->sql);
	free(s);
}

/* ---- discovery and snapshot -------------------------------------------------------- */

static const char list_sql[] = "SELECT n.nspname, c.relname, c.relkind "
                               "FROM pg_catalog.pg_class c "
                               "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                               "WHERE n.nspname = ANY ($1::text[]) "
                               "AND (c.relkind IN ('r', 'p') OR ($2::bool AND (c.relkind = 'v' OR "
                               "     (c.relkind = 'm' AND c.relispopulated)))) "
                               "AND NOT (c.relispartition AND EXISTS ("
                               "     SELECT 1 FROM pg_catalog.pg_inherits i "
                               "     JOIN pg_catalog.pg_class pc ON pc.oid = i.inhparent "
                               "     JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace "
                               "     WHERE i.inhrelid = c.oid AND pn.nspname = ANY ($1::text[])))";

static int cmp_table(const void *a, const void *b)
{
	return strcmp(((const struct pg_table *)a)->name, ((const struct pg_table *)b)->name);
}

static int load_tables(struct source *s, struct ierr *e)
{
	const char *params[2] = {s->schemas, s->include_views ? "true" : "false"};
	PGresult *r = query(s, list_sql, 2, params, PGRES_TUPLES_OK, NULL, e);
	int nrows;

	if (r == NULL)
		return ierr_prefix(e, "listing tables");
	nrows = PQntuples(r);
	s->tables = calloc((size_t)nrows + 1, sizeof(*s->tables));
	if (s->tables == NULL) {
		PQclear(r);
		return ierr_set(e, IERR_INTERNAL, "postgresql: out of memory");
	}
	for (int i = 0; i < nrows; i++) {
		struct pg_table *t = &s->tables[s->ntables++];
		const char *nsp = PQgetvalue(r, i, 0);
		const char *rel = PQgetvalue(r, i, 1);
		struct buf name = {0};

		if (strcmp(nsp, "public") != 0) {
			buf_puts(&name, nsp);
			buf_putc(&name, '.');
		}
		buf_puts(&name, rel);
		buf_cstr(&name);
		t->name = name.data;
		t->schema = xstrdup(nsp);
		t->rel = xstrdup(rel);
		t->relkind = PQgetvalue(r, i, 2)[0];
	}
	PQclear(r);
	qsort(s->tables, s->ntables, sizeof(*s->tables), cmp_table);
	for (size_t i = 1; i < s->ntables; i++) {
		if (strcmp(s->tables[i - 1].name, s->tables[i].name) == 0)
			return ierr_set(e, IERR_SOURCE,
			                "postgresql %s: two tables would both be named \"%s\" in "
			                "S3 (schema \"%s\" and schema \"%s\"); rename one or "
			                "narrow POSTGRES_SCHEMAS",
			                s->label, s->tables[i].name, s->tables[i - 1].schema,
			                s->tables[i].schema);
	}
	s->listed = true;
	return 0;
}

static int pg_list_tables(struct source *s, struct strlist *out, struct ierr *e)
{
	if (!s->listed && load_tables(s, e) != 0)
		return -1;
	for (size_t i = 0; i < s->ntables; i++)
		strlist_push(out, s->tables[i].name);
	return 0;
}

static int pg_begin_snapshot(struct source *s, struct ierr *e)
{
	/* The snapshot is taken by the first statement, so take it now. */
	PGresult *r;

	snapshot_reset(s);
	r = query(s, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT 1", 0, NULL,
	          PGRES_TUPLES_OK, NULL, e);
	if (r == NULL)
		return ierr_prefix(e, "starting the snapshot");
	PQclear(r);
	return 0;
}

/* COLLECT_PARALLEL: s exports its snapshot and every other connection
 * imports it (SET TRANSACTION SNAPSHOT) before any row is read. s keeps the
 * exporting transaction open for the whole run (it reads tables too), which
 * is what keeps the snapshot importable. A server that cannot export (a
 * hot standby before PostgreSQL 10, a pooler in transaction mode refusing
 * it) leaves s alone in its snapshot. */
static int pg_begin_shared_snapshot(struct source *s, struct source *const *more, int n, char *why,
                                    size_t whylen, struct ierr *e)
{
	PGresult *r;
	char id[128], sql[256];

	snapshot_reset(s);
	for (int i = 0; i < n; i++)
		snapshot_reset(more[i]);
	r = query(s,
	          "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; "
	          "SELECT pg_export_snapshot()",
	          0, NULL, PGRES_TUPLES_OK, NULL, e);
	if (r == NULL) {
		if (s->broken || PQstatus(s->conn) != CONNECTION_OK)
			return ierr_prefix(e, "exporting the snapshot");
		snprintf(why, whylen, "pg_export_snapshot() failed: %s", e->msg);
		if (command(s, "ROLLBACK", NULL, e) != 0)
			return -1;
		return pg_begin_snapshot(s, e) == 0 ? 1 : -1;
	}
	snprintf(id, sizeof(id), "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	/* The server's own text, but it is quoted into SQL: hex digits and '-'. */
	if (id[0] == '\0' || strspn(id, "0123456789ABCDEFabcdef-") != strlen(id))
		return ierr_set(e, IERR_SOURCE, "postgresql %s: unexpected snapshot id", s->label);
	snprintf(sql, sizeof(sql),
	         "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '%s'",
	         id);
	for (int i = 0; i < n; i++) {
		if (command(more[i], sql, NULL, e) != 0)
			return ierr_prefix(e, "importing the snapshot");
	}
	return 0;
}

/* ---- column types ------------------------------------------------------------------ */

/* Builtin type OIDs (pg_type.dat); anything else is looked up in pg_type. */
static const struct {
	Oid oid;
	enum pg_conv conv;
} builtin_types[] = {
    {16, PGC_BOOL},        {17, PGC_BYTEA},         {18, PGC_STRING},   {19, PGC_STRING},
    {20, PGC_INT},         {21, PGC_INT},           {23, PGC_INT},      {25, PGC_STRING},
    {26, PGC_INT},         {114, PGC_JSON},         {700, PGC_FLOAT4},  {701, PGC_FLOAT8},
    {1042, PGC_STRING},    {1043, PGC_STRING},      {1082, PGC_DATE},   {1083, PGC_TIME},
    {1114, PGC_TIMESTAMP}, {1184, PGC_TIMESTAMPTZ}, {1186, PGC_STRING}, {1266, PGC_TIMETZ},
    {1700, PGC_NUMERIC},   {2950, PGC_STRING},      {3802, PGC_JSON},
};

static const struct {
	Oid oid;
	Oid elem;
} builtin_arrays[] = {
    {1000, 16},   {1001, 17},   {1002, 18},   {1003, 19},   {1016, 20},   {1005, 21},
    {1007, 23},   {1009, 25},   {1028, 26},   {199, 114},   {1021, 700},  {1022, 701},
    {1014, 1042}, {1015, 1043}, {1182, 1082}, {1183, 1083}, {1115, 1114}, {1185, 1184},
    {1187, 1186}, {1270, 1266}, {1231, 1700}, {2951, 2950}, {3807, 3802},
};

static bool builtin_scalar(Oid oid, enum pg_conv *conv)
{
	for (size_t i = 0; i < sizeof(builtin_types) / sizeof(builtin_types[0]); i++) {
		if (builtin_types[i].oid == oid) {
			*conv = builtin_types[i].conv;
			return true;
		}
	}
	return false;
}

static void cache_type(struct source *s, Oid oid, const struct pg_col *col)
{
	if (s->ntypes == s->captypes) {
		size_t cap = s->captypes ? 2 * s->captypes : 16;
		s->types = xrealloc(s->types, cap * sizeof(*s->types));
		s->captypes = cap;
	}
	s->types[s->ntypes].oid = oid;
	s->types[s->ntypes].col = *col;
	s->ntypes++;
}

static const struct pg_col *cached_type(const struct source *s, Oid oid)
{
	for (size_t i = 0; i < s->ntypes; i++) {
		if (s->types[i].oid == oid)
			return &s->types[i].col;
	}
	return NULL;
}

/* The rule for a type: builtins directly; others through pg_type, following
 * domains to their base type and arrays to their element type (whose typdelim
 * separates the elements). Depth-limited against catalog cycles. */
static int resolve_type(struct source *s, Oid oid, int depth, const char *table, struct pg_col *out,
                        struct ierr *e)
{
	static const char type_sql[] = "SELECT typtype, typelem, typdelim, typbasetype, "
	                               "typcategory, typlen FROM pg_catalog.pg_type "
	                               "WHERE oid = $1";
	const struct pg_col *hit = cached_type(s, oid);
	struct pg_col col = {PGC_STRING, PGC_STRING, ','};
	char oidtext[16];
	const char *param = oidtext;
	PGresult *r;

	if (hit != NULL) {
		*out = *hit;
		return 0;
	}
	if (builtin_scalar(oid, &col.conv)) {
		*out = col;
		return 0;
	}
	for (size_t i = 0; i < sizeof(builtin_arrays) / sizeof(builtin_arrays[0]); i++) {
		if (builtin_arrays[i].oid == oid) {
			col.conv = PGC_ARRAY;
			builtin_scalar(builtin_arrays[i].elem, &col.elem);
			*out = col;
			return 0;
		}
	}
	if (depth > 8) {
		*out = col;
		return 0;
	}
	snprintf(oidtext, sizeof(oidtext), "%u", oid);
	r = query(s, type_sql, 1, &param, PGRES_TUPLES_OK, table, e);
	if (r == NULL)
		return -1;
	if (PQntuples(r) == 1) {
		char typtype = PQgetvalue(r, 0, 0)[0];
		Oid elem = (Oid)strtoul(PQgetvalue(r, 0, 1), NULL, 10);
		Oid base = (Oid)strtoul(PQgetvalue(r, 0, 3), NULL, 10);
		char category = PQgetvalue(r, 0, 4)[0];
		int typlen = atoi(PQgetvalue(r, 0, 5));
		struct pg_col sub;

		if (typtype == 'd' && base != 0) {
			if (resolve_type(s, base, depth + 1, table, &col, e) != 0) {
				PQclear(r);
				return -1;
			}
		} else if (category == 'A' && elem != 0 && typlen == -1) {
			if (resolve_type(s, elem, depth + 1, table, &sub, e) != 0) {
				PQclear(r);
				return -1;
			}
			col.conv = PGC_ARRAY;
			col.elem = sub.conv == PGC_ARRAY ? PGC_STRING : sub.conv;
			col.delim = sub.delim;
		} else {
			col.delim = PQgetvalue(r, 0, 2)[0];
		}
	}
	PQclear(r);
	if (col.delim == '\0' || col.delim == '"' || col.delim == '{' || col.delim == '}')
		col.delim = ',';
	cache_type(s, oid, &col);
	*out = col;
	return 0;
}

/* ---- read_table ---------------------------------------------------------------------- */

struct plan {
	struct pg_col *cols;
	char **names;
	size_t *key_off; /* into keys: `{"name":` or `,"name":` */
	size_t *key_len;
	struct pg_field *fields;
	size_t n;
	struct buf keys;
};

static void plan_free(struct plan *p)
{
	for (size_t i = 0; p->names != NULL && i < p->n; i++)
		free(p->names[i]);
	free(p->names);
	free(p->cols);
	free(p->key_off);
	free(p->key_len);
	free(p->fields);
	buf_free(&p->keys);
}

static const struct pg_table *find_table(const struct source *s, const char *name)
{
	struct pg_table key = {.name = (char *)name};

	if (s->ntables == 0)
		return NULL;
	return bsearch(&key, s->tables, s->ntables, sizeof(*s->tables), cmp_table);
}

/* `SELECT * FROM [ONLY] "schema"."rel"` into s->sql. */
static int build_select(struct source *s, const struct pg_table *t, const char *table,
                        struct ierr *e)
{
	char *nsp = PQescapeIdentifier(s->conn, t->schema, strlen(t->schema));
	char *rel = PQescapeIdentifier(s->conn, t->rel, strlen(t->rel));

	if (nsp == NULL || rel == NULL) {
		PQfreemem(nsp);
		PQfreemem(rel);
		return fail_res(s, NULL, table, e);
	}
	buf_reset(&s->sql);
	buf_puts(&s->sql, "SELECT * FROM ");
	if (t->relkind == 'r')
		buf_puts(&s->sql, "ONLY ");
	buf_puts(&s->sql, nsp);
	buf_putc(&s->sql, '.');
	buf_puts(&s->sql, rel);
	buf_cstr(&s->sql);
	PQfreemem(nsp);
	PQfreemem(rel);
	return 0;
}

static int build_plan(struct source *s, const PGresult *probe, const char *table, struct plan *p,
                      struct ierr *e)
{
	size_t n = (size_t)PQnfields(probe);

	p->n = n;
	p->cols = calloc(n + 1, sizeof(*p->cols));
	p->names = calloc(n + 1, sizeof(*p->names));
	p->key_off = calloc(n + 1, sizeof(size_t));
	p->key_len = calloc(n + 1, sizeof(size_t));
	p->fields = calloc(n + 1, sizeof(*p->fields));
	if (p->cols == NULL || p->names == NULL || p->key_off == NULL || p->key_len == NULL ||
	    p->fields == NULL)
		return ierr_set(e, IERR_INTERNAL, "postgresql: out of memory");
	for (size_t i = 0; i < n; i++) {
		const char *name = PQfname(probe, (int)i);

		p->names[i] = xstrdup(name);
		if (resolve_type(s, PQftype(probe, (int)i), 0, table, &p->cols[i], e) != 0)
			return -1;
		p->key_off[i] = p->keys.len;
		buf_putc(&p->keys, i == 0 ? '{' : ',');
		json_key(&p->keys, name, strlen(name));
		p->key_len[i] = p->keys.len - p->key_off[i];
	}
	return 0;
}

static int emit_row(const struct plan *p, char *line, size_t len, struct pg_text_ctx *cx,
                    struct buf *b, struct ierr *e)
{
	if (pg_copy_split(line, len, p->fields, p->n) != 0)
		return ierr_set(e, IERR_SOURCE, "COPY row with an unexpected number of fields");
	for (size_t i = 0; i < p->n; i++) {
		const struct pg_field *f = &p->fields[i];

		buf_append(b, p->keys.data + p->key_off[i], p->key_len[i]);
		if (f->p == NULL) {
			json_null(b);
		} else if (pg_text_value(b, &p->cols[i], f->p, f->n, cx, e) != 0) {
			return ierr_prefix(e, "column \"%s\"", p->names[i]);
		}
	}
	if (p->n == 0)
		buf_putc(b, '{');
	buf_putc(b, '}');
	return 0;
}

static int copy_rows(struct source *s, const char *table, const struct plan *p,
                     struct table_writer *w, struct ierr *e)
{
	const struct norm_opts *opts = table_writer_opts(w);
	struct pg_text_ctx cx = {
	    .lossy = table_writer_lossy(w), .decimal = opts->decimal, .binary = opts->binary};
	PGresult *r;
	int rc = 0;

	for (;;) {
		char *line = NULL;
		int n = PQgetCopyData(s->conn, &line, 1);

		if (n > 0) {
			struct buf *b = table_writer_row_begin(w);
			struct ierr conv;

			rc = emit_row(p, line, (size_t)n, &cx, b, &conv);
			PQfreemem(line);
			if (rc != 0) {
				fail_msg(s, table, e, conv.msg);
				break;
			}
			rc = table_writer_row_end(w, e);
			if (rc != 0)
				break;
			continue;
		}
		if (n == 0) {
			rc = wait_readable(s, table, e);
			if (rc == 0 && !PQconsumeInput(s->conn))
				rc = fail_res(s, NULL, table, e);
			if (rc != 0)
				break;
			continue;
		}
		/* -1: the COPY is over (its final result says how); -2: failed. */
		if (wait_result(s, table, e) != 0) {
			rc = -1;
			break;
		}
		r = PQgetResult(s->conn);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			rc = fail_res(s, r, table, e);
			s->broken = true;
		}
		PQclear(r);
		while (rc == 0 && (r = PQgetResult(s->conn)) != NULL)
			PQclear(r);
		break;
	}
	if (rc != 0)
		s->broken = true; /* mid-COPY: the connection cannot be reused */
	pg_text_ctx_free(&cx);
	return rc;
}

/* The table's SELECT built into s->sql, and its columns without rows: the
 * result of "<select> LIMIT 0" (PQclear it), or NULL with *e. The lock this
 * takes is held until the snapshot ends, so a COPY of the same SELECT later in
 * the run sees the same columns. For the same reason, with reuse, the probe
 * table_schema() just ran on this table in this transaction is returned
 * instead of a new one; any probe consumes the kept one. */
static PGresult *probe_table(struct source *s, const char *table, const struct pg_table **tp,
                             bool reuse, struct ierr *e)
{
	struct buf stmt = {0};
	PGresult *kept = s->probe;
	const struct pg_table *kept_t = s->probe_t;
	PGresult *r;

	s->probe = NULL;
	s->probe_t = NULL;
	if (s->broken) {
		fail_msg(s, table, e, "connection unusable after an earlier failure");
		goto drop;
	}
	if (!s->listed && load_tables(s, e) != 0)
		goto drop;
	*tp = find_table(s, table);
	if (*tp == NULL) {
		fail_msg(s, table, e, "no such table in POSTGRES_SCHEMAS");
		goto drop;
	}
	if (build_select(s, *tp, table, e) != 0)
		goto drop;
	if (reuse && kept != NULL && kept_t == *tp &&
	    PQtransactionStatus(s->conn) == PQTRANS_INTRANS)
		return kept;
	PQclear(kept);
	buf_append(&stmt, s->sql.data, s->sql.len);
	buf_puts(&stmt, " LIMIT 0");
	r = query(s, buf_cstr(&stmt), 0, NULL, PGRES_TUPLES_OK, table, e);
	buf_free(&stmt);
	return r;
drop:
	PQclear(kept);
	return NULL;
}

/* The rows of `table`, all of them (where NULL) or those of the WHERE clause
 * where (appended to the COPY's SELECT). */
static int read_where(struct source *s, const char *table, const char *where,
                      struct table_writer *w, struct ierr *e)
{
	const struct pg_table *t;
	struct plan p = {0};
	struct buf stmt = {0};
	PGresult *r;
	int rc = -1;

	r = probe_table(s, table, &t, true, e);
	if (r == NULL)
		goto out;
	rc = build_plan(s, r, table, &p, e);
	PQclear(r);
	if (rc != 0)
		goto out;
	rc = -1;
	buf_reset(&stmt);
	buf_puts(&stmt, "COPY (");
	buf_append(&stmt, s->sql.data, s->sql.len);
	if (where != NULL)
		buf_puts(&stmt, where);
	buf_puts(&stmt, ") TO STDOUT");
	r = query(s, buf_cstr(&stmt), 0, NULL, PGRES_COPY_OUT, table, e);
	if (r == NULL)
		goto out;
	PQclear(r);
	rc = copy_rows(s, table, &p, w, e);
out:
	/* A failed statement aborts the snapshot's transaction: later tables
	 * would only get "current transaction is aborted". */
	if (rc != 0)
		s->broken = true;
	buf_free(&stmt);
	plan_free(&p);
	return rc;
}

static int pg_read_table(struct source *s, const char *table, struct table_writer *w,
                         struct ierr *e)
{
	return read_where(s, table, NULL, w, e);
}

/* ---- incremental: high-water mark and range reads ------------------------------------- */

/*
 * Values are never pasted into SQL. The high-water mark query binds them
 * with PQsendQueryParams as untyped parameters, which the server types from
 * the column they are compared with. COPY takes no parameters, so a range
 * read first binds them into two transaction-local settings
 * (set_config('ingesta.after', $1, true) through PQsendQueryParams), and the
 * COPY's clause reads them back as current_setting('ingesta.after')::<the
 * column's type from the catalog>: the server parses and compares the value
 * as that type; the only text pasted is the catalog's type name and the
 * column name quoted by PQescapeIdentifier. Values travel in the server's
 * text form (TimeZone UTC, DateStyle ISO: "2026-01-01 10:00:00.123456+00").
 */
static int range_from(struct source *s, const char *table, const char *column, struct buf *from,
                      char **qcol, struct ierr *e)
{
	const struct pg_table *t;

	if (s->broken)
		return fail_msg(s, table, e, "connection unusable after an earlier failure");
	if (!s->listed && load_tables(s, e) != 0)
		return -1;
	t = find_table(s, table);
	if (t == NULL)
		return fail_msg(s, table, e, "no such table in POSTGRES_SCHEMAS");
	if (build_select(s, t, table, e) != 0)
		return -1;
	*qcol = PQescapeIdentifier(s->conn, column, strlen(column));
	if (*qcol == NULL)
		return fail_res(s, NULL, table, e);
	/* s->sql is "SELECT * FROM [ONLY] nsp.rel" */
	buf_puts(from, s->sql.data + strlen("SELECT * "));
	return 0;
}

static int pg_cursor_high(struct source *s, const char *table, const struct range_req *rq,
                          struct cursor_val *high, bool *has_nulls, struct ierr *e)
{
	struct buf from = {0}, sql = {0};
	char *qcol = NULL;
	const char *params[2];
	char lag[32];
	int np = 0, rc = -1;
	PGresult *r = NULL;

	high->text = NULL;
	high->kind = 't';
	if (range_from(s, table, rq->column, &from, &qcol, e) != 0)
		goto out;
	buf_printf(&sql, "SELECT max(%s)::text", qcol);
	if (has_nulls)
		buf_printf(&sql, ", EXISTS (SELECT 1 %s WHERE %s IS NULL)", buf_cstr(&from), qcol);
	buf_printf(&sql, " %s WHERE %s IS NOT NULL", buf_cstr(&from), qcol);
	if (rq->after) {
		params[np++] = rq->after->text;
		buf_printf(&sql, " AND %s > $%d", qcol, np);
	}
	/* now(): the transaction's start on the server's clock, the one the
	 * snapshot was taken at. */
	if (rq->lag_ms > 0 && (rq->kind == CK_DATE || rq->kind == CK_DATETIME)) {
		snprintf(lag, sizeof(lag), "%lld", (long long)rq->lag_ms);
		params[np++] = lag;
		buf_printf(&sql, " AND %s <= now() - $%d::bigint * interval '1 millisecond'", qcol,
		           np);
	}
	r = query(s, buf_cstr(&sql), np, params, PGRES_TUPLES_OK, table, e);
	if (r == NULL || PQntuples(r) != 1) {
		if (r != NULL)
			fail_msg(s, table, e, "high-water mark: no result row");
		goto out;
	}
	if (!PQgetisnull(r, 0, 0))
		high->text = xstrdup(PQgetvalue(r, 0, 0));
	if (has_nulls)
		*has_nulls = PQgetvalue(r, 0, 1)[0] == 't';
	rc = 0;
out:
	if (rc != 0)
		s->broken = true;
	PQclear(r);
	PQfreemem(qcol);
	buf_free(&from);
	buf_free(&sql);
	return rc;
}

static int pg_read_range(struct source *s, const char *table, const struct range_req *rq,
                         struct table_writer *w, struct ierr *e)
{
	struct buf from = {0}, where = {0};
	char *qcol = NULL;
	const char *params[2];
	PGresult *r;
	int rc = -1;

	if (range_from(s, table, rq->column, &from, &qcol, e) != 0)
		goto out;
	params[0] = rq->after && !rq->snapshot ? rq->after->text : "";
	params[1] = rq->through ? rq->through->text : "";
	r = query(s,
	          "SELECT set_config('ingesta.after', $1, true), "
	          "set_config('ingesta.through', $2, true)",
	          2, params, PGRES_TUPLES_OK, table, e);
	if (r == NULL) {
		s->broken = true;
		goto out;
	}
	PQclear(r);
	incr_where_sql(DIALECT_POSTGRES, qcol, rq->type, rq->snapshot,
	               rq->after != NULL && !rq->snapshot, rq->through != NULL, &where);
	rc = read_where(s, table, buf_cstr(&where), w, e);
out:
	PQfreemem(qcol);
	buf_free(&from);
	buf_free(&where);
	return rc;
}

/* ---- splitting a table (COLLECT_PARALLEL) ------------------------------------------- */

static int parse_i64(const char *text, int64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoll(text, &end, 10);
	return errno == 0 && end != text && *end == '\0' ? 0 : -1;
}

/* The main fork's size: exact and cheap (no statistics needed). Partitioned
 * parents, views and inheritance parents are not split. */
static int pg_table_bytes(struct source *s, const char *table, int64_t *bytes, struct ierr *e)
{
	const struct pg_table *t;
	const char *params[2];
	PGresult *r;

	*bytes = -1;
	if (!s->listed && load_tables(s, e) != 0)
		return -1;
	t = find_table(s, table);
	if (t == NULL || t->relkind != 'r')
		return 0;
	params[0] = t->schema;
	params[1] = t->rel;
	r = query(s,
	          "SELECT pg_relation_size(c.oid), EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i "
	          "WHERE i.inhparent = c.oid) FROM pg_catalog.pg_class c "
	          "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
	          "WHERE n.nspname = $1 AND c.relname = $2",
	          2, params, PGRES_TUPLES_OK, table, e);
	if (r == NULL)
		return -1;
	if (PQntuples(r) == 1 && PQgetvalue(r, 0, 1)[0] == 'f' &&
	    parse_i64(PQgetvalue(r, 0, 0), bytes) != 0)
		*bytes = -1;
	PQclear(r);
	return 0;
}

static int pg_key_bounds(struct source *s, const char *table, const char *column, int64_t *lo,
                         int64_t *hi, bool *empty, struct ierr *e)
{
	struct buf from = {0}, sql = {0};
	char *qcol = NULL;
	PGresult *r = NULL;
	int rc = -1;

	*empty = true;
	if (range_from(s, table, column, &from, &qcol, e) != 0)
		goto out;
	buf_printf(&sql, "SELECT min(%s)::text, max(%s)::text %s", qcol, qcol, buf_cstr(&from));
	r = query(s, buf_cstr(&sql), 0, NULL, PGRES_TUPLES_OK, table, e);
	if (r == NULL || PQntuples(r) != 1) {
		if (r != NULL)
			fail_msg(s, table, e, "key bounds: no result row");
		goto out;
	}
	if (!PQgetisnull(r, 0, 0)) {
		if (parse_i64(PQgetvalue(r, 0, 0), lo) != 0 ||
		    parse_i64(PQgetvalue(r, 0, 1), hi) != 0) {
			fail_msg(s, table, e, "key bounds: not an integer");
			goto out;
		}
		*empty = false;
	}
	rc = 0;
out:
	PQclear(r);
	PQfreemem(qcol);
	buf_free(&from);
	buf_free(&sql);
	return rc;
}

/* ---- table_schema --------------------------------------------------------------------- */

/*
 * The columns are those of `SELECT * ... LIMIT 0` (the probe read_table()
 * reuses): its lock is held until the snapshot ends, so they are the
 * columns the rows are read with even when the table was altered after the
 * snapshot began. For each, from the snapshot's catalog: the type as
 * format_type() spells it ("numeric(12,2)", "timestamp with time zone",
 * "text[]", "character varying(10)", a domain by its name); NOT NULL as
 * information_schema reads it (the column's own constraint, or a NOT NULL
 * domain); its position in the primary key. A column the catalog snapshot
 * does not have yet (added since) gets the probe's type, nullable.
 *
 * Inside a snapshot the catalog is read for a chunk of listed tables at once
 * (cat_sql: the table asked for and the ones after it in list order, the
 * order a run reads them in), which saves the per-table query's parse and
 * plan: about 0.4 ms a table. The first chunk has CAT_MIN tables; a chunk
 * asked for just past the previous one (the run reads the list in order) is
 * twice as long, up to CAT_MAX; any other starts again at CAT_MIN. Not all
 * listed tables at once: that costs about 50 ms for 5,000 tables, which a
 * run of one table (INCLUDE_TABLES) would pay in full. A table the chunk has
 * no columns for, or whose probe has a column the chunk lacks, is read with
 * schema_sql, the per-table query, which also handles the columns added since.
 */
#define CAT_MIN 8
#define CAT_MAX 128

static const char schema_sql[] =
    "SELECT coalesce(pg_catalog.format_type(a.atttypid, a.atttypmod), "
    "                pg_catalog.format_type(p.typ, p.mod)), "
    "       coalesce(a.attnotnull OR (t.typtype = 'd' AND t.typnotnull), false), "
    "       (SELECT k.ord FROM pg_catalog.pg_index i, "
    "               unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) "
    "        WHERE i.indrelid = a.attrelid AND i.indisprimary AND k.attnum = a.attnum) "
    "FROM unnest($3::oid[], $4::int4[], $5::text[]) WITH ORDINALITY AS p(typ, mod, name, ord) "
    "LEFT JOIN (pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid) "
    "  ON a.attrelid = (SELECT c.oid FROM pg_catalog.pg_class c "
    "                   JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "                   WHERE n.nspname = $1 AND c.relname = $2) "
    "  AND a.attname = p.name AND a.attnum > 0 AND NOT a.attisdropped "
    "ORDER BY p.ord";

/* schema_sql's three values (columns 2..4) for the columns of every table
 * named by ($1[j], $2[j]), found as schema_sql finds one, with the column
 * name (1) and j (0). */
static const char cat_sql[] =
    "SELECT w.ord, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), "
    "       a.attnotnull OR (t.typtype = 'd' AND t.typnotnull), "
    "       (SELECT k.ord FROM pg_catalog.pg_index i, "
    "               unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) "
    "        WHERE i.indrelid = a.attrelid AND i.indisprimary AND k.attnum = a.attnum) "
    "FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS w(nsp, rel, ord) "
    "JOIN pg_catalog.pg_namespace n ON n.nspname = w.nsp "
    "JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = w.rel "
    "JOIN pg_catalog.pg_attribute a "
    "  ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
    "JOIN pg_catalog.pg_type t ON t.oid = a.atttypid "
    "ORDER BY w.ord, a.attnum";

/* One element of a text[] literal, quoted. */
static void text_elem(struct buf *b, const char *v)
{
	buf_putc(b, '"');
	for (const char *c = v; *c; c++) {
		if (*c == '"' || *c == '\\')
			buf_putc(b, '\\');
		buf_putc(b, *c);
	}
	buf_putc(b, '"');
}

/* Append the probe's column names as the elements of a text[] literal. */
static void names_literal(struct buf *b, const PGresult *probe)
{
	buf_putc(b, '{');
	for (int i = 0; i < PQnfields(probe); i++) {
		if (i > 0)
			buf_putc(b, ',');
		text_elem(b, PQfname(probe, i));
	}
	buf_putc(b, '}');
}

/* The catalog's columns of tables[at ..] into s->cat, a chunk of CAT_MIN to
 * CAT_MAX tables. */
static int cat_load(struct source *s, size_t at, const char *table, struct ierr *e)
{
	struct buf nsps = {0}, rels = {0};
	const char *params[2];
	size_t was = s->cat.hi - s->cat.lo;
	size_t size = CAT_MIN;
	size_t hi;
	PGresult *r;

	if (s->cat.res != NULL && at >= s->cat.hi && at < s->cat.hi + was)
		size = 2 * was < CAT_MAX ? 2 * was : CAT_MAX;
	hi = at + size < s->ntables ? at + size : s->ntables;
	PQclear(s->cat.res);
	free(s->cat.first);
	free(s->cat.count);
	memset(&s->cat, 0, sizeof(s->cat));
	buf_putc(&nsps, '{');
	buf_putc(&rels, '{');
	for (size_t i = at; i < hi; i++) {
		if (i > at) {
			buf_putc(&nsps, ',');
			buf_putc(&rels, ',');
		}
		text_elem(&nsps, s->tables[i].schema);
		text_elem(&rels, s->tables[i].rel);
	}
	buf_putc(&nsps, '}');
	buf_putc(&rels, '}');
	params[0] = buf_cstr(&nsps);
	params[1] = buf_cstr(&rels);
	r = query(s, cat_sql, 2, params, PGRES_TUPLES_OK, table, e);
	buf_free(&nsps);
	buf_free(&rels);
	if (r == NULL)
		return -1;
	s->cat.first = calloc(hi - at + 1, sizeof(int));
	s->cat.count = calloc(hi - at + 1, sizeof(int));
	if (s->cat.first == NULL || s->cat.count == NULL) {
		PQclear(r);
		return ierr_set(e, IERR_INTERNAL, "postgresql: out of memory");
	}
	for (int i = 0; i < PQntuples(r); i++) {
		long j = strtol(PQgetvalue(r, i, 0), NULL, 10) - 1;

		if (j < 0 || (size_t)j >= hi - at)
			continue;
		if (s->cat.count[j]++ == 0)
			s->cat.first[j] = i;
	}
	s->cat.res = r;
	s->cat.lo = at;
	s->cat.hi = hi;
	return 0;
}

/* rows[i]: the s->cat.res row of the probe's column i, for every column; 1
 * when a column is missing (the table needs schema_sql), -1 with *e. */
static int cat_rows(struct source *s, const struct pg_table *t, const PGresult *probe,
                    const char *table, int *rows, struct ierr *e)
{
	size_t at = (size_t)(t - s->tables);
	int first, count;

	if (s->cat.res == NULL || at < s->cat.lo || at >= s->cat.hi) {
		if (cat_load(s, at, table, e) != 0)
			return -1;
	}
	first = s->cat.first[at - s->cat.lo];
	count = s->cat.count[at - s->cat.lo];
	for (int i = 0; i < PQnfields(probe); i++) {
		const char *name = PQfname(probe, i);

		rows[i] = -1;
		/* The same order, but for columns added after the snapshot began. */
		if (i < count && strcmp(PQgetvalue(s->cat.res, first + i, 1), name) == 0)
			rows[i] = first + i;
		for (int k = 0; rows[i] < 0 && k < count; k++) {
			if (strcmp(PQgetvalue(s->cat.res, first + k, 1), name) == 0)
				rows[i] = first + k;
		}
		if (rows[i] < 0)
			return 1;
	}
	return count > 0 ? 0 : 1;
}

/* schema_sql for one table: its rows are the probe's columns, in order. */
static PGresult *schema_query(struct source *s, const struct pg_table *t, const PGresult *probe,
                              const char *table, struct ierr *e)
{
	struct buf oids = {0}, mods = {0}, names = {0};
	const char *params[5];
	int n = PQnfields(probe);
	PGresult *r;

	buf_putc(&oids, '{');
	buf_putc(&mods, '{');
	for (int i = 0; i < n; i++) {
		buf_printf(&oids, "%s%u", i ? "," : "", PQftype(probe, i));
		buf_printf(&mods, "%s%d", i ? "," : "", PQfmod(probe, i));
	}
	buf_putc(&oids, '}');
	buf_putc(&mods, '}');
	names_literal(&names, probe);
	params[0] = t->schema;
	params[1] = t->rel;
	params[2] = buf_cstr(&oids);
	params[3] = buf_cstr(&mods);
	params[4] = buf_cstr(&names);
	r = query(s, schema_sql, 5, params, PGRES_TUPLES_OK, table, e);
	buf_free(&oids);
	buf_free(&mods);
	buf_free(&names);
	if (r != NULL && PQntuples(r) != n) {
		fail_msg(s, table, e, "reading its columns: column count changed");
		PQclear(r);
		return NULL;
	}
	return r;
}

static int pg_table_schema(struct source *s, const char *table, struct table_schema *out,
                           struct ierr *e)
{
	const struct pg_table *t;
	const char **pk = NULL;
	const PGresult *cols;
	PGresult *probe = NULL, *r = NULL;
	int *rows = NULL;
	int n, c0, npk = 0, rc = -1, miss = 1;
	bool in_tx;

	probe = probe_table(s, table, &t, false, e);
	if (probe == NULL)
		goto out;
	n = PQnfields(probe);
	rows = calloc((size_t)n + 1, sizeof(*rows));
	pk = calloc((size_t)n + 1, sizeof(*pk));
	if (rows == NULL || pk == NULL) {
		ierr_set(e, IERR_INTERNAL, "postgresql: out of memory");
		goto out;
	}
	/* Outside a transaction every statement has a snapshot of its own. */
	in_tx = PQtransactionStatus(s->conn) == PQTRANS_INTRANS;
	if (in_tx) {
		miss = cat_rows(s, t, probe, table, rows, e);
		if (miss < 0)
			goto out;
	}
	if (miss) {
		r = schema_query(s, t, probe, table, e);
		if (r == NULL)
			goto out;
		for (int i = 0; i < n; i++)
			rows[i] = i;
	}
	cols = miss ? r : s->cat.res;
	c0 = miss ? 0 : 2;
	for (int i = 0; i < n; i++) {
		const char *name = PQfname(probe, i);
		int key = PQgetisnull(cols, rows[i], c0 + 2)
		              ? 0
		              : atoi(PQgetvalue(cols, rows[i], c0 + 2));

		table_schema_add_column(out, name, strlen(name), PQgetvalue(cols, rows[i], c0),
		                        PQgetvalue(cols, rows[i], c0 + 1)[0] != 't');
		if (key >= 1 && key <= n) {
			pk[key - 1] = out->cols[out->ncols - 1].name;
			if (key > npk)
				npk = key;
		}
	}
	for (int i = 0; i < npk; i++) {
		if (pk[i] != NULL)
			table_schema_add_pk(out, pk[i]);
	}
	/* read_table() of this table reuses the probe (probe_table). */
	if (in_tx) {
		s->probe = probe;
		s->probe_t = t;
		probe = NULL;
	}
	rc = 0;
out:
	/* A failed statement aborts the snapshot's transaction. */
	if (rc != 0)
		s->broken = true;
	free(pk);
	free(rows);
	PQclear(probe);
	PQclear(r);
	return rc;
}

const struct source_ops source_postgres = {
    .db_type = "postgresql",
    .legacy_bucket_key = "S3_BUCKET_MS2",
    .open = pg_open,
    .list_tables = pg_list_tables,
    .begin_snapshot = pg_begin_snapshot,
    .read_table = pg_read_table,
    .table_schema = pg_table_schema,
    .cursor_high = pg_cursor_high,
    .read_range = pg_read_range,
    .begin_shared_snapshot = pg_begin_shared_snapshot,
    .table_bytes = pg_table_bytes,
    .key_bounds = pg_key_bounds,
    .close = pg_close,
};
