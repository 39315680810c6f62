/*
 * config.c - the key table and the KEY=VALUE loader (see config.h).
 *
 * The table below is the single declaration of every setting: type, default,
 * secrecy and documentation. Values are validated once at load, so the rest of
 * the program reads typed values and never re-checks them. Precedence is file <
 * environment < flags, as DESIGN.md says; only declared keys are read from the
 * environment, so unrelated variables never leak in.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "buf.h"
#include "log.h"
#include "parse.h"

enum key_type { T_STR, T_INT, T_BOOL, T_ENUM, T_SIZE, T_DURATION };

struct key_def {
	const char *name;
	enum key_type type;
	const char *def;     /* default, as text */
	const char *choices; /* T_ENUM: "a|b|c"; T_INT: "min..max" */
	int secret;
	const char *alias_of; /* deprecated/original spelling of another key */
	const char *doc;
};

#define SECRET 1
/* clang-format off */
static const struct key_def keys[] = {
	/* --- source selection and extraction --- */
	{"DB_TYPE", T_ENUM, "", "mysql|mariadb|postgresql|postgres|mongodb|mongo|sqlite", 0, NULL, "source database type (required for collect; mariadb, postgres and mongo are aliases)"},
	{"SOURCE_NAME", T_STR, "", NULL, 0, NULL, "name of this source in the spool and status (default: the DB_TYPE)"},
	{"INCLUDE_TABLES", T_STR, "", NULL, 0, NULL, "comma-separated glob patterns of tables/collections to extract (default: all)"},
	{"EXCLUDE_TABLES", T_STR, "", NULL, 0, NULL, "comma-separated glob patterns of tables/collections to skip"},
	{"INCLUDE_VIEWS", T_BOOL, "false", NULL, 0, NULL, "also extract views"},
	{"DECIMAL_MODE", T_ENUM, "exact", "exact|double|string", 0, NULL, "exact decimals: server digits as JSON numbers, rounded through a double (the original's behaviour), or strings"},
	{"BINARY_MODE", T_ENUM, "utf8", "utf8|base64|hex", 0, NULL, "binary columns: UTF-8 text with U+FFFD for bad bytes (the original's behaviour), or lossless base64 / hex"},
	{"INGESTION_INTERVAL", T_DURATION, "0", NULL, 0, NULL, "collect: repeat every this many seconds (0 = run once and exit)"},
	{"SOURCE_CONNECT_TIMEOUT", T_DURATION, "10", NULL, 0, NULL, "source connection timeout, seconds"},
	{"SOURCE_QUERY_TIMEOUT", T_DURATION, "0", NULL, 0, NULL, "source statement/read timeout, seconds (0 = none)"},
	{"COLLECT_PARALLEL", T_INT, "1", "1..64", 0, NULL, "source connections read at once, each a different table, all in the run's one snapshot (PostgreSQL: an exported snapshot; MySQL/MariaDB: FLUSH TABLES WITH READ LOCK while they start, needs RELOAD, else one connection; MongoDB: at one shared atClusterTime, or per collection without snapshot reads; SQLite and incremental runs: one); fewer when the server refuses a connection"},
	{"COLLECT_SPLIT_BYTES", T_SIZE, "64M", NULL, 0, NULL, "COLLECT_PARALLEL > 1: a table at least twice this size on disk (the server's figure) with a one-column integer primary key is read as key ranges of about this size on several connections at once, at most one per connection (0 = never split)"},
	{"LOAD_MODE", T_ENUM, "snapshot", "snapshot|incremental", 0, NULL, "snapshot: every run reads whole tables; incremental: tables with a cursor column read only the rows past their committed watermark (README \"Incremental extraction\")"},
	{"INCREMENTAL_COLUMN", T_STR, "", NULL, 0, NULL, "LOAD_MODE=incremental: the cursor column of every table that has it (tables without it are read as snapshots, logged once per run)"},
	{"INCREMENTAL_COLUMNS", T_STR, "", NULL, 0, NULL, "LOAD_MODE=incremental: per-table cursor columns, table:column,... (wins over INCREMENTAL_COLUMN)"},
	{"PRIMARY_KEYS", T_STR, "", NULL, 0, NULL, "primary keys for tables whose source declares none, table:col+col,... (incremental tables need one, for <table>_current)"},
	{"INCREMENTAL_NULLS", T_ENUM, "refuse", "refuse|snapshot|skip", 0, NULL, "rows whose cursor is NULL: refuse a nullable cursor column at start; snapshot = a run that finds such a row reads the whole table; skip = they reach the lake only with snapshot runs"},
	{"INCREMENTAL_LAG", T_DURATION, "0", NULL, 0, NULL, "date-time cursors: hold the high-water mark this long behind the source's clock, for rows that become visible after their timestamp"},
	{"FULL_REFRESH_EVERY", T_DURATION, "0", NULL, 0, NULL, "incremental tables: a snapshot run when the last one is older than this, so deletions reach the lake (0 = never)"},
	/* --- SQLite (the embedded default) --- */
	{"SQLITE_PATH", T_STR, "", NULL, 0, NULL, "path of the SQLite database file (DB_TYPE=sqlite)"},
	/* --- MySQL / MariaDB --- */
	{"MYSQL_HOST", T_STR, "localhost", NULL, 0, NULL, "MySQL/MariaDB host"},
	{"MYSQL_PORT", T_INT, "3306", "1..65535", 0, NULL, "MySQL/MariaDB port"},
	{"MYSQL_USER", T_STR, "", NULL, 0, NULL, "MySQL/MariaDB user"},
	{"MYSQL_PASSWORD", T_STR, "", NULL, SECRET, NULL, "MySQL/MariaDB password"},
	{"MYSQL_DATABASE", T_STR, "", NULL, 0, NULL, "MySQL/MariaDB database to extract"},
	{"MYSQL_DB", T_STR, "", NULL, 0, "MYSQL_DATABASE", "alias of MYSQL_DATABASE"},
	{"MYSQL_SSL_MODE", T_ENUM, "PREFERRED", "DISABLED|PREFERRED|REQUIRED|VERIFY_CA|VERIFY_IDENTITY", 0, NULL, "TLS to the MySQL server"},
	{"MYSQL_SSL_CA", T_STR, "", NULL, 0, NULL, "CA file for MYSQL_SSL_MODE=VERIFY_*"},
	/* --- PostgreSQL --- */
	{"POSTGRES_HOST", T_STR, "localhost", NULL, 0, NULL, "PostgreSQL host"},
	{"POSTGRES_PORT", T_INT, "5432", "1..65535", 0, NULL, "PostgreSQL port"},
	{"POSTGRES_USER", T_STR, "", NULL, 0, NULL, "PostgreSQL user"},
	{"POSTGRES_PASSWORD", T_STR, "", NULL, SECRET, NULL, "PostgreSQL password"},
	{"POSTGRES_DB", T_STR, "", NULL, 0, NULL, "PostgreSQL database to extract"},
	{"POSTGRES_DATABASE", T_STR, "", NULL, 0, "POSTGRES_DB", "alias of POSTGRES_DB"},
	{"POSTGRES_DSN", T_STR, "", NULL, SECRET, NULL, "full libpq connection string or URI; replaces the POSTGRES_HOST.. keys"},
	{"POSTGRES_SSLMODE", T_ENUM, "prefer", "disable|allow|prefer|require|verify-ca|verify-full", 0, NULL, "libpq sslmode"},
	{"POSTGRES_SSLROOTCERT", T_STR, "", NULL, 0, NULL, "CA file for POSTGRES_SSLMODE=verify-*"},
	{"POSTGRES_SCHEMAS", T_STR, "public", NULL, 0, NULL, "comma-separated schemas to extract; tables outside public are named schema.table"},
	/* --- MongoDB --- */
	{"MONGO_HOST", T_STR, "localhost", NULL, 0, NULL, "MongoDB host"},
	{"MONGO_PORT", T_INT, "27017", "1..65535", 0, NULL, "MongoDB port"},
	{"MONGO_USER", T_STR, "", NULL, 0, NULL, "MongoDB user"},
	{"MONGO_PASSWORD", T_STR, "", NULL, SECRET, NULL, "MongoDB password"},
	{"MONGO_DATABASE", T_STR, "", NULL, 0, NULL, "MongoDB database to extract"},
	{"MONGO_DB", T_STR, "", NULL, 0, "MONGO_DATABASE", "alias of MONGO_DATABASE"},
	{"MONGO_AUTH_SOURCE", T_STR, "admin", NULL, 0, NULL, "MongoDB authentication database"},
	{"MONGO_URI", T_STR, "", NULL, SECRET, NULL, "full MongoDB URI; replaces the MONGO_HOST.. keys"},
	{"MONGO_TLS", T_BOOL, "false", NULL, 0, NULL, "TLS to the MongoDB server"},
	{"MONGO_TLS_CA_FILE", T_STR, "", NULL, 0, NULL, "CA file for MONGO_TLS"},
	{"MONGO_BATCH_SIZE", T_INT, "1000", "1..100000", 0, NULL, "documents per cursor batch"},
	{"MONGO_SNAPSHOT", T_ENUM, "auto", "auto|true|false", 0, NULL, "read all collections at one point in time (MongoDB 5.0+ replica set/sharded: a snapshot session, or with COLLECT_PARALLEL every connection at one atClusterTime): auto = when the server can, true = required, false = never"},
	/* --- spool --- */
	{"SPOOL_DIR", T_STR, "/var/lib/ingesta/spool", NULL, 0, NULL, "spool directory (segments + spool.db), shared by collectors and the uploader"},
	{"SPOOL_MAX_BYTES", T_SIZE, "10G", NULL, 0, NULL, "spool quota (bytes; K/M/G suffixes); 0 = no quota"},
	{"SPOOL_FULL_ACTION", T_ENUM, "fail", "fail|wait", 0, NULL, "collector at the quota: stop with an error, or wait for the uploader to free space"},
	{"SEGMENT_MAX_BYTES", T_SIZE, "64M", NULL, 0, NULL, "roll to a new segment after this many uncompressed bytes"},
	{"SEGMENT_MAX_ROWS", T_INT, "1000000", "1..1000000000", 0, NULL, "roll to a new segment after this many rows"},
	{"COMPRESSION", T_ENUM, "zstd", "zstd|none", 0, NULL, "segment compression (.json.zst or .json)"},
	{"ZSTD_LEVEL", T_INT, "1", "1..19", 0, NULL, "zstd compression level (1: the fastest on the bench data, and its output no larger than at 2 or 3)"},
	{"RETENTION", T_DURATION, "0", NULL, 0, NULL, "keep uploaded segment files this many seconds before deleting them (0: the uploader worker that sent them deletes them as soon as they are recorded, 4 MiB at a time; rows stay until gc)"},
	/* --- target --- */
	{"S3_BUCKET", T_STR, "", NULL, 0, NULL, "target: an S3 bucket name, or file:///path for a local directory"},
	{"S3_BUCKET_MS1", T_STR, "", NULL, 0, NULL, "the original's bucket for the MySQL source (used when S3_BUCKET is unset and DB_TYPE=mysql)"},
	{"S3_BUCKET_MS2", T_STR, "", NULL, 0, NULL, "the original's bucket for the PostgreSQL source"},
	{"S3_BUCKET_MS3", T_STR, "", NULL, 0, NULL, "the original's bucket for the MongoDB source"},
	{"S3_PREFIX", T_STR, "", NULL, 0, NULL, "key prefix prepended to every object key"},
	{"S3_KEY_TEMPLATE", T_STR, "", NULL, 0, NULL, "object key template with {table} {year} {month} {day} {run_id} {seq} {ext} {source}; default per ENABLE_PARTITIONING"},
	{"ENABLE_PARTITIONING", T_BOOL, "true", NULL, 0, NULL, "year=/month=/day= directories in keys (partition date = run start, UTC)"},
	{"S3_ENDPOINT", T_STR, "", NULL, 0, NULL, "custom S3 endpoint URL (MinIO, on-prem); implies path-style addressing"},
	{"S3_FORCE_PATH_STYLE", T_ENUM, "auto", "auto|true|false", 0, NULL, "path-style addressing (auto: for custom endpoints and bucket names with dots)"},
	{"S3_CA_FILE", T_STR, "", NULL, 0, NULL, "CA bundle for HTTPS to S3"},
	{"S3_INSECURE_SKIP_VERIFY", T_BOOL, "false", NULL, 0, NULL, "turn off TLS certificate verification (warns at every start)"},
	{"S3_CHECKSUM", T_ENUM, "sha256", "sha256|none", 0, NULL, "send x-amz-checksum-sha256 with uploads"},
	{"S3_CONDITIONAL_WRITES", T_ENUM, "auto", "auto|true|false", 0, NULL, "If-None-Match: * on PUT (false: HEAD before PUT)"},
	{"AWS_DEFAULT_REGION", T_STR, "us-east-1", NULL, 0, NULL, "S3 region"},
	{"AWS_REGION", T_STR, "", NULL, 0, NULL, "S3 region (wins over AWS_DEFAULT_REGION)"},
	{"AWS_ACCESS_KEY_ID", T_STR, "", NULL, SECRET, NULL, "static credentials (else the chain: shared files, ECS, EC2 instance role)"},
	{"AWS_SECRET_ACCESS_KEY", T_STR, "", NULL, SECRET, NULL, "static credentials"},
	{"AWS_SESSION_TOKEN", T_STR, "", NULL, SECRET, NULL, "session token for temporary static credentials"},
	{"AWS_PROFILE", T_STR, "", NULL, 0, NULL, "profile in the shared credentials/config files"},
	{"AWS_SHARED_CREDENTIALS_FILE", T_STR, "", NULL, 0, NULL, "default ~/.aws/credentials"},
	{"AWS_CONFIG_FILE", T_STR, "", NULL, 0, NULL, "default ~/.aws/config"},
	{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", T_STR, "", NULL, 0, NULL, "ECS container credentials path"},
	{"AWS_CONTAINER_CREDENTIALS_FULL_URI", T_STR, "", NULL, 0, NULL, "container credentials URL"},
	{"AWS_CONTAINER_AUTHORIZATION_TOKEN", T_STR, "", NULL, SECRET, NULL, "authorization header for container credentials"},
	{"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", T_STR, "", NULL, 0, NULL, "file holding that authorization token"},
	{"AWS_EC2_METADATA_SERVICE_ENDPOINT", T_STR, "", NULL, 0, NULL, "EC2 instance metadata endpoint (default http://169.254.169.254)"},
	{"AWS_EC2_METADATA_DISABLED", T_BOOL, "false", NULL, 0, NULL, "skip EC2 instance metadata in the credentials chain"},
	{"AWS_EC2_METADATA_V1_FALLBACK", T_BOOL, "false", NULL, 0, NULL, "allow IMDSv1 (no token) when the IMDSv2 token request fails"},
	{"AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", T_ENUM, "IPv4", "IPv4|IPv6", 0, NULL, "instance metadata endpoint family (IPv6: http://[fd00:ec2::254])"},
	{"AWS_METADATA_SERVICE_TIMEOUT", T_INT, "2", "1..60", 0, NULL, "seconds per instance metadata / container credentials request"},
	{"AWS_METADATA_SERVICE_NUM_ATTEMPTS", T_INT, "3", "1..10", 0, NULL, "attempts per instance metadata / container credentials request"},
	/* --- uploader --- */
	{"UPLOAD_CONCURRENCY", T_INT, "4", "1..64", 0, NULL, "uploads in flight"},
	{"MULTIPART_THRESHOLD", T_SIZE, "64M", NULL, 0, NULL, "multipart upload above this size"},
	{"MULTIPART_PART_SIZE", T_SIZE, "16M", NULL, 0, NULL, "multipart part size (at least 5M)"},
	{"UPLOAD_PART_CONCURRENCY", T_INT, "4", "1..16", 0, NULL, "parts of one multipart upload in flight (1: one after the other)"},
	{"MAX_ATTEMPTS", T_INT, "10", "1..1000", 0, NULL, "upload attempts before a segment is failed"},
	{"RETRY_BASE", T_DURATION, "1", NULL, 0, NULL, "retry backoff base, seconds (full jitter)"},
	{"RETRY_CAP", T_DURATION, "300", NULL, 0, NULL, "retry backoff cap, seconds"},
	{"RESCAN_INTERVAL", T_DURATION, "30", NULL, 0, NULL, "uploader: full spool rescan period, seconds (inotify wakes it sooner)"},
	{"METRICS_FILE", T_STR, "", NULL, 0, NULL, "Prometheus textfile written by the uploader (empty: off)"},
	{"METRICS_LISTEN", T_STR, "", NULL, 0, NULL, "address:port the uploader serves /metrics and /healthz on over HTTP, e.g. 127.0.0.1:9464 or [::1]:9464 (empty: off)"},
	/* --- Glue Data Catalog (ingesta catalog, and the uploader when GLUE_DATABASE is set) --- */
	{"GLUE_DATABASE", T_STR, "", NULL, 0, NULL, "Glue database the uploader keeps the lake's tables and views in before each commit record (empty: off); {source} is replaced by the source name"},
	{"GLUE_ENDPOINT", T_STR, "", NULL, 0, NULL, "custom Glue endpoint URL (default https://glue.<region>.amazonaws.com)"},
	{"GLUE_REGION", T_STR, "", NULL, 0, NULL, "Glue region (default: the S3 region)"},
	{"GLUE_VIEW_CATALOG", T_STR, "awsdatacatalog", NULL, 0, NULL, "catalog the registered views resolve their tables in: Athena's, or the name of the Trino catalog on this Glue database"},
	/* --- logging --- */
	{"LOG_LEVEL", T_ENUM, "INFO", "DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|debug|info|warning|warn|error|critical", 0, NULL, "log level"},
	{"LOG_FORMAT", T_ENUM, "logfmt", "logfmt|json", 0, NULL, "log line format"},
	{"LOG_FILE", T_STR, "", NULL, 0, NULL, "log to this file instead of stderr (reopened on SIGHUP)"},
	{"COLLECT_STATS", T_BOOL, "false", NULL, 0, NULL, "log where each table's time went: source read, normalization, compression, hashing, writing"},
	{"PROGRESS", T_ENUM, "auto", "auto|always|never", 0, NULL, "progress line for long tables (auto: when stderr is a terminal)"},
};
/* clang-format on */

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

struct config {
	char *val[NKEYS];
	int64_t num[NKEYS];
	int set[NKEYS];
	const char *secrets[NKEYS + 1];
	int warnings;
};

static int key_index(const char *name)
{
	for (size_t i = 0; i < NKEYS; i++) {
		if (strcmp(keys[i].name, name) == 0)
			return (int)i;
	}
	return -1;
}

/* Resolve an alias to its canonical key. */
static int canonical(int i)
{
	if (i >= 0 && keys[i].alias_of)
		return key_index(keys[i].alias_of);
	return i;
}

static int lookup_or_die(const char *key)
{
	int i = key_index(key);

	if (i < 0) {
		fprintf(stderr, "ingesta: internal error: undeclared config key %s\n", key);
		abort();
	}
	return canonical(i);
}

static int parse_int(const char *s, int64_t *out)
{
	char *end;
	long long v;

	errno = 0;
	if (*s == '\0')
		return -1;
	v = strtoll(s, &end, 10);
	if (errno || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

static int parse_bool(const char *s, int64_t *out)
{
	static const char *const yes[] = {"true", "1", "yes", "on"};
	static const char *const no[] = {"false", "0", "no", "off"};

	for (int i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return -1;
}

static bool enum_has(const char *choices, const char *v)
{
	size_t n = strlen(v);
	const char *p = choices;

	while (p && *p) {
		const char *bar = strchr(p, '|');
		size_t len = bar ? (size_t)(bar - p) : strlen(p);

		if (len == n && strncmp(p, v, n) == 0)
			return true;
		p = bar ? bar + 1 : NULL;
	}
	return false;
}

/* Validate and convert one value; the message never shows a secret's value. */
static int validate(struct config *c, int i, const char *origin, struct ierr *e)
{
	const struct key_def *k = &keys[i];
	const char *v = c->val[i];
	const char *shown = k->secret ? "(secret)" : v;
	int64_t num = 0;

	switch (k->type) {
	case T_STR:
		return 0;
	case T_INT: {
		long long lo, hi;

		if (parse_int(v, &num) != 0)
			return ierr_set(e, IERR_CONFIG, "%s: not a number: \"%s\"%s%s", k->name,
			                shown, origin ? " in " : "", origin ? origin : "");
		if (k->choices && sscanf(k->choices, "%lld..%lld", &lo, &hi) == 2 &&
		    (num < lo || num > hi))
			return ierr_set(e, IERR_CONFIG, "%s: %lld is out of range %s%s%s", k->name,
			                (long long)num, k->choices, origin ? " in " : "",
			                origin ? origin : "");
		break;
	}
	case T_BOOL:
		if (parse_bool(v, &num) != 0)
			return ierr_set(e, IERR_CONFIG,
			                "%s: not a boolean: \"%s\" (use true or false)%s%s",
			                k->name, shown, origin ? " in " : "", origin ? origin : "");
		break;
	case T_ENUM:
		if (!enum_has(k->choices, v) && !(*v == '\0' && *k->def == '\0'))
			return ierr_set(e, IERR_CONFIG, "%s: \"%s\" is not one of %s%s%s", k->name,
			                shown, k->choices, origin ? " in " : "",
			                origin ? origin : "");
		break;
	case T_SIZE:
		if (parse_size(v, &num) != 0)
			return ierr_set(
			    e, IERR_CONFIG,
			    "%s: not a size: \"%s\" (bytes, or a number with K, M, G)%s%s", k->name,
			    shown, origin ? " in " : "", origin ? origin : "");
		break;
	case T_DURATION:
		if (parse_duration(v, &num) != 0)
			return ierr_set(
			    e, IERR_CONFIG,
			    "%s: not a duration: \"%s\" (seconds, or a number with ms, s, "
			    "m, h, d)%s%s",
			    k->name, shown, origin ? " in " : "", origin ? origin : "");
		break;
	}
	c->num[i] = num;
	return 0;
}

static void set_value(struct config *c, int i, const char *v)
{
	free(c->val[i]);
	c->val[i] = strdup(v);
	c->set[i] = 1;
}

/* Parse one value that follows '=': quotes, escapes, trailing comments. */
static int parse_value(const char *p, struct buf *out, const char *where, struct ierr *e)
{
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\'') {
		const char *end = strchr(p + 1, '\'');

		if (end == NULL)
			return ierr_set(e, IERR_CONFIG, "%s: unterminated single quote", where);
		buf_append(out, p + 1, (size_t)(end - p - 1));
		p = end + 1;
	} else if (*p == '"') {
		for (p++; *p && *p != '"'; p++) {
			if (*p == '\\' && p[1]) {
				p++;
				switch (*p) {
				case 'n':
					buf_putc(out, '\n');
					break;
				case 't':
					buf_putc(out, '\t');
					break;
				case '"':
				case '\\':
				case '$':
				case '`':
					buf_putc(out, *p);
					break;
				default:
					buf_putc(out, '\\');
					buf_putc(out, *p);
				}
			} else {
				buf_putc(out, *p);
			}
		}
		if (*p != '"')
			return ierr_set(e, IERR_CONFIG, "%s: unterminated double quote", where);
		p++;
	} else {
		const char *start = p;
		const char *end;

		/* An unquoted value ends at " #" (a trailing comment) or the line's end. */
		while (*p && !((*p == '#') && p > start && (p[-1] == ' ' || p[-1] == '\t')))
			p++;
		end = p;
		while (end > start && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
			end--;
		buf_append(out, start, (size_t)(end - start));
		return 0;
	}
	while (*p == ' ' || *p == '\t' || *p == '\r')
		p++;
	if (*p && *p != '#')
		return ierr_set(e, IERR_CONFIG, "%s: unexpected text after the closing quote",
		                where);
	return 0;
}

static bool valid_key_name(const char *k, size_t n)
{
	if (n == 0 || isdigit((unsigned char)k[0]))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!(isalnum((unsigned char)k[i]) || k[i] == '_'))
			return false;
	}
	return true;
}

static int parse_line(struct config *c, char *line, const char *where, struct ierr *e)
{
	char *p = line;
	char *eq;
	char name[128];
	size_t nlen;
	struct buf v = {0};
	int i;

	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0' || *p == '#' || *p == '\r')
		return 0;
	if (strncmp(p, "export ", 7) == 0 || strncmp(p, "export\t", 7) == 0)
		for (p += 7; *p == ' ' || *p == '\t';)
			p++;
	eq = strchr(p, '=');
	if (eq == NULL)
		return ierr_set(e, IERR_CONFIG, "%s: expected KEY=VALUE", where);
	nlen = (size_t)(eq - p);
	while (nlen > 0 && (p[nlen - 1] == ' ' || p[nlen - 1] == '\t'))
		nlen--;
	if (!valid_key_name(p, nlen) || nlen >= sizeof(name))
		return ierr_set(e, IERR_CONFIG, "%s: \"%.*s\" is not a valid key name", where,
		                (int)(nlen < 64 ? nlen : 64), p);
	memcpy(name, p, nlen);
	name[nlen] = '\0';
	if (parse_value(eq + 1, &v, where, e) != 0) {
		buf_free(&v);
		return -1;
	}
	i = key_index(name);
	if (i < 0) {
		log_event(LOG_WARNING, "unknown configuration key ignored", "key", name, "where",
		          where, NULL);
		c->warnings++;
	} else {
		set_value(c, canonical(i), buf_cstr(&v));
	}
	buf_free(&v);
	return 0;
}

static int parse_text(struct config *c, const char *text, const char *origin, struct ierr *e)
{
	char *copy = strdup(text);
	char *save = NULL;
	char *line;
	int lineno = 0;
	int rc = 0;
	char *p = copy;

	/* strtok would merge empty lines and break line numbers; split by hand. */
	(void)save;
	while (p) {
		char where[512];

		line = p;
		p = strchr(p, '\n');
		if (p)
			*p++ = '\0';
		lineno++;
		snprintf(where, sizeof(where), "%s:%d", origin, lineno);
		if (parse_line(c, line, where, e) != 0) {
			rc = -1;
			break;
		}
	}
	free(copy);
	return rc;
}

/* Rules that involve more than one value, or a value's shape beyond its type. */
static int validate_combined(struct config *c, struct ierr *e)
{
	static const char *const known[] = {"table",  "year", "month", "day",
	                                    "run_id", "seq",  "ext",   "source"};
	const char *tmpl = c->val[key_index("S3_KEY_TEMPLATE")];
	static const char *const buckets[] = {"S3_BUCKET", "S3_BUCKET_MS1", "S3_BUCKET_MS2",
	                                      "S3_BUCKET_MS3"};

	if (c->val[key_index("SPOOL_DIR")][0] == '\0')
		return ierr_set(e, IERR_CONFIG, "SPOOL_DIR: empty (a directory for the spool)");
	if (*tmpl) {
		for (const char *p = strchr(tmpl, '{'); p; p = strchr(p + 1, '{')) {
			const char *close = strchr(p, '}');
			bool ok = false;

			for (size_t i = 0; close && i < sizeof(known) / sizeof(known[0]); i++)
				ok = ok || ((size_t)(close - p - 1) == strlen(known[i]) &&
				            strncmp(p + 1, known[i], strlen(known[i])) == 0);
			if (!ok)
				return ierr_set(
				    e, IERR_CONFIG,
				    "S3_KEY_TEMPLATE: unknown placeholder at \"%.20s\" (known: "
				    "{table} {year} {month} {day} {run_id} {seq} {ext} {source})",
				    p);
		}
		if (strstr(tmpl, "{run_id}") == NULL || strstr(tmpl, "{seq}") == NULL)
			return ierr_set(
			    e, IERR_CONFIG,
			    "S3_KEY_TEMPLATE: must contain {run_id} and {seq} (keys must be "
			    "unique per segment)");
	}
	for (size_t i = 0; i < sizeof(buckets) / sizeof(buckets[0]); i++) {
		const char *b = c->val[key_index(buckets[i])];

		if (strncmp(b, "file://", 7) == 0 && b[7] != '/')
			return ierr_set(e, IERR_CONFIG,
			                "%s: \"%s\": a file:// bucket needs an absolute path "
			                "(file:///srv/lake/raw)",
			                buckets[i], b);
	}
	{
		int64_t part = c->num[key_index("MULTIPART_PART_SIZE")];

		if (part < 5 * 1024 * 1024 || part > 5LL * 1024 * 1024 * 1024)
			return ierr_set(
			    e, IERR_CONFIG,
			    "MULTIPART_PART_SIZE: %lld is outside S3's 5M..5G part sizes",
			    (long long)part);
	}
	if (strlen(c->val[key_index("S3_PREFIX")]) > 512)
		return ierr_set(e, IERR_CONFIG,
		                "S3_PREFIX: longer than 512 bytes (S3 keys are at most 1024)");
	return 0;
}

static struct config *finish(struct config *c, const char *const *overrides, bool use_env,
                             struct ierr *e)
{
	int ns = 0;

	if (use_env) {
		for (size_t i = 0; i < NKEYS; i++) {
			const char *v = getenv(keys[i].name);

			if (v != NULL)
				set_value(c, canonical((int)i), v);
		}
	}
	for (; overrides && *overrides; overrides++) {
		const char *eq = strchr(*overrides, '=');
		char name[128];
		int i;

		if (eq == NULL || (size_t)(eq - *overrides) >= sizeof(name)) {
			ierr_set(e, IERR_CONFIG, "option: expected KEY=VALUE");
			goto fail;
		}
		memcpy(name, *overrides, (size_t)(eq - *overrides));
		name[eq - *overrides] = '\0';
		i = key_index(name);
		if (i < 0) {
			ierr_set(e, IERR_CONFIG, "option: unknown configuration key %s", name);
			goto fail;
		}
		set_value(c, canonical(i), eq + 1);
	}
	for (size_t i = 0; i < NKEYS; i++) {
		if (keys[i].alias_of)
			continue;
		if (!c->set[i])
			c->val[i] = strdup(keys[i].def);
		if (validate(c, (int)i, NULL, e) != 0)
			goto fail;
		if (keys[i].secret && c->val[i][0]) {
			c->secrets[ns++] = c->val[i];
			log_add_secret(c->val[i]);
		}
	}
	c->secrets[ns] = NULL;
	if (validate_combined(c, e) != 0)
		goto fail;
	return c;
fail:
	config_free(c);
	return NULL;
}

struct config *config_parse_text(const char *text, const char *origin, const char *const *overrides,
                                 bool use_env, struct ierr *e)
{
	struct config *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		ierr_set(e, IERR_INTERNAL, "out of memory");
		return NULL;
	}
	if (text && parse_text(c, text, origin ? origin : "config", e) != 0) {
		config_free(c);
		return NULL;
	}
	return finish(c, overrides, use_env, e);
}

struct config *config_load(const char *path, const char *const *overrides, struct ierr *e)
{
	struct buf text = {0};
	struct config *c;

	if (path) {
		FILE *f = fopen(path, "r");
		char chunk[8192];
		size_t n;

		struct stat sb;

		if (f == NULL) {
			ierr_errno(e, errno, "config %s", path);
			e->code = IERR_CONFIG;
			return NULL;
		}
		if (fstat(fileno(f), &sb) == 0 && S_ISDIR(sb.st_mode)) {
			fclose(f);
			ierr_set(e, IERR_CONFIG, "config %s: is a directory, not a KEY=VALUE file",
			         path);
			return NULL;
		}
		while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
			buf_append(&text, chunk, n);
		fclose(f);
		if (memchr(text.data ? text.data : "", '\0', text.len) != NULL) {
			buf_free(&text);
			ierr_set(e, IERR_CONFIG, "config %s: contains a NUL byte (not a text file)",
			         path);
			return NULL;
		}
	}
	c = config_parse_text(path ? buf_cstr(&text) : NULL, path, overrides, true, e);
	buf_free(&text);
	return c;
}

void config_free(struct config *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < NKEYS; i++)
		free(c->val[i]);
	free(c);
}

const char *config_str(const struct config *c, const char *key)
{
	return c->val[lookup_or_die(key)];
}

int64_t config_int(const struct config *c, const char *key)
{
	return c->num[lookup_or_die(key)];
}

bool config_bool(const struct config *c, const char *key)
{
	return c->num[lookup_or_die(key)] != 0;
}

bool config_is_set(const struct config *c, const char *key)
{
	return c->set[lookup_or_die(key)] != 0;
}

int config_warnings(const struct config *c)
{
	return c->warnings;
}

const char *const *config_secrets(const struct config *c)
{
	return c->secrets;
}

void config_print_reference(void)
{
	static const char *const tnames[] = {"string", "integer", "boolean",
	                                     "choice", "size",    "duration"};

	printf("| key | type | default | meaning |\n| --- | --- | --- | --- |\n");
	for (size_t i = 0; i < NKEYS; i++) {
		const struct key_def *k = &keys[i];

		char choices[256] = "";

		if (k->type == T_ENUM) {
			/* A '|' would split the Markdown cell. */
			snprintf(choices, sizeof(choices), " (%s)", k->choices);
			for (char *p = choices; *p; p++)
				if (*p == '|')
					*p = ',';
		}
		printf("| `%s` | %s%s | %s%s%s | %s%s |\n", k->name, tnames[k->type],
		       k->secret ? " (secret)" : "", *k->def ? "`" : "", *k->def ? k->def : "",
		       *k->def ? "`" : "", k->doc, choices);
	}
}
