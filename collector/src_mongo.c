/*
 * src_mongo.c - the MongoDB source driver (libmongoc), DB_TYPE=mongodb.
 *
 * One database (MONGO_DATABASE) per run; every collection but system.* (and
 * views, unless INCLUDE_VIEWS) becomes a table, in byte order of its name. Each
 * collection is read with one find cursor, empty filter, no sort: natural
 * order is a plain collection scan on MongoDB and FerretDB alike, costs the
 * server no sort memory and no index walk, and still returns each document
 * once (documents do not move on update in WiredTiger or FerretDB). Memory is
 * one cursor batch (MONGO_BATCH_SIZE documents, at most one 16 MiB reply
 * message in practice) plus the row being written: each document is converted
 * straight from the reply buffer into the row buffer (bson_json.c).
 *
 * Snapshot (MONGO_SNAPSHOT). MongoDB 5.0+ replica sets and sharded clusters
 * serve reads outside transactions at one point in time through a snapshot
 * session (readConcern "snapshot", atClusterTime fixed by the first read);
 * `auto` uses one when `hello` shows such a server (setName or mongos, wire
 * version >= 13), so every collection is read at the same instant. Standalone
 * mongod cannot. FerretDB (tested: v1.24) answers hello like a standalone and,
 * worse, accepts readConcern "snapshot" and silently ignores it, so the server's
 * word is never taken: without setName/mongos `auto` reads each collection
 * with its own cursor, so collections are not mutually consistent (the
 * original ingester never was either), and says so in the log. `true` refuses to run without a
 * snapshot; `false` never uses one. A snapshot must stay within the server's
 * minSnapshotHistoryWindowInSeconds (default 300 s): a longer run fails with
 * SnapshotTooOld, and the message says to raise that window or set
 * MONGO_SNAPSHOT=false.
 *
 * COLLECT_PARALLEL in a snapshot: the first connection makes one snapshot
 * read (readConcern "snapshot", no time) and takes the cluster time the
 * server chose from the reply's cursor.atClusterTime; then every connection,
 * the first included, reads each collection with readConcern {level:
 * "snapshot", atClusterTime: that time} (MongoDB 5.0+ allows it for find
 * outside transactions), so collections read on different connections show
 * the same instant. Those finds are run as commands (find_at_cluster_time:
 * libmongoc's find drops atClusterTime) in a plain session per connection.
 * A collection created or changed after that time fails the run with
 * SnapshotUnavailable (the message says to run again or set
 * MONGO_SNAPSHOT=false). The first read is of one document of the first
 * collection by name (not a view) that the user may read.
 * A server whose reply has no atClusterTime is read through one connection
 * in its snapshot session, as without COLLECT_PARALLEL. Incremental runs are
 * always read through one connection (parallel.c), so the plan and the
 * high-water mark (aggregate, find_one) only ever use the snapshot session.
 *
 * Credentials never go into a string: the URI is built from the host and port,
 * then user, password and auth source are set on the parsed mongoc_uri_t.
 * Messages name "mongodb <host>:<port>/<db>" only; libmongoc's own messages
 * and log lines pass through log_scrub(), which knows MONGO_PASSWORD, MONGO_URI
 * and the password inside a MONGO_URI.
 */
#include <mongoc/mongoc.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bson_json.h"
#include "log.h"
#include "schema.h"
#include "source.h"
#include "util.h"

enum snapshot_mode { SNAP_AUTO, SNAP_ON, SNAP_OFF };

struct source {
	mongoc_client_t *client;
	mongoc_database_t *db;
	mongoc_client_session_t *session; /* snapshot session, or NULL */
	/* COLLECT_PARALLEL in a snapshot: every connection reads at one cluster
	 * time (at_t, at_i) in its own plain session (see read_at_cluster_time). */
	mongoc_client_session_t *plain;
	bool at_set;
	uint32_t at_t, at_i;
	struct strlist colls; /* the collections (not views), to take the cluster time from */
	char *dbname;
	char where[600]; /* "mongodb host:port/db": no credentials */
	int64_t batch_size;
	int64_t query_timeout_ms;
	bool include_views;
	enum snapshot_mode snapshot;
	struct schema_infer infer; /* of the collection read last */
};

/* libmongoc's log lines join ours (scrubbed by log_event); its chatter is debug. */
static void mongoc_log_to_ingesta(mongoc_log_level_t level, const char *domain, const char *message,
                                  void *user_data)
{
	enum log_level l;

	(void)user_data;
	switch (level) {
	case MONGOC_LOG_LEVEL_ERROR:
	case MONGOC_LOG_LEVEL_CRITICAL:
	case MONGOC_LOG_LEVEL_WARNING:
		l = LOG_WARNING;
		break;
	default:
		l = LOG_DEBUG;
		break;
	}
	/* Servers without endSessions (FerretDB) make every client teardown warn;
	 * the sessions simply expire server-side, so this is not worth a warning. */
	if (strstr(message, "\"endSessions\"") != NULL)
		l = LOG_DEBUG;
	if (level == MONGOC_LOG_LEVEL_TRACE || !log_enabled(l))
		return;
	log_event(l, "libmongoc", "domain", domain, "detail", message, NULL);
}

/* A source error: "<where>: <ctx>: <libmongoc message>", password-free. */
static int fail_mongoc(struct source *s, struct ierr *e, const bson_error_t *berr, const char *fmt,
                       const char *arg)
{
	char ctx[512];
	char cause[sizeof(berr->message) + 1];

	snprintf(ctx, sizeof(ctx), fmt, arg);
	snprintf(cause, sizeof(cause), "%s", berr->message);
	/* MONGO_PASSWORD, MONGO_URI and a URI's password are registered secrets. */
	log_scrub(cause, sizeof(cause));
	if (strstr(cause, "SnapshotTooOld") || berr->code == 239)
		return ierr_set(e, IERR_SOURCE,
		                "%s: %s: %s (the run outlived the server's snapshot history: raise "
		                "minSnapshotHistoryWindowInSeconds or set MONGO_SNAPSHOT=false)",
		                s->where, ctx, cause);
	if (strstr(cause, "SnapshotUnavailable") || berr->code == 246)
		return ierr_set(
		    e, IERR_SOURCE,
		    "%s: %s: %s (a collection was created, dropped or changed after the "
		    "snapshot's cluster time: run again, or set MONGO_SNAPSHOT=false)",
		    s->where, ctx, cause);
	return ierr_set(e, IERR_SOURCE, "%s: %s: %s", s->where, ctx, cause);
}

static bool host_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '-' || c == '_';
}

/* "mongodb://<host>:<port>/" with host as a name, an IPv6 literal or a Unix
 * socket path (percent-encoded). Nothing secret goes in. */
static int build_host_uri(struct buf *u, const char *host, int64_t port, struct ierr *e)
{
	buf_puts(u, "mongodb://");
	if (host[0] == '\0')
		return ierr_set(e, IERR_CONFIG, "MONGO_HOST: empty");
	if (strncmp(host, "mongodb://", 10) == 0 || strncmp(host, "mongodb+srv://", 14) == 0)
		return ierr_set(e, IERR_CONFIG,
		                "MONGO_HOST: a URI, not a host; put it in MONGO_URI");
	if (host[0] == '/') {
		for (const char *p = host; *p; p++) {
			if (host_char_ok(*p))
				buf_putc(u, *p);
			else
				buf_printf(u, "%%%02X", (unsigned char)*p);
		}
		buf_putc(u, '/');
		return 0;
	}
	if (strchr(host, ':') != NULL) {
		size_t n = strlen(host);

		if (host[0] == '[' && host[n - 1] == ']') {
			host++;
			n -= 2;
		}
		for (size_t i = 0; i < n; i++) {
			if (!strchr("0123456789abcdefABCDEF:.%", host[i]))
				return ierr_set(e, IERR_CONFIG,
				                "MONGO_HOST: \"%.200s\" is neither a host name nor "
				                "an IPv6 address",
				                host);
		}
		buf_printf(u, "[%.*s]:%lld/", (int)n, host, (long long)port);
		return 0;
	}
	for (const char *p = host; *p; p++) {
		if (!host_char_ok(*p))
			return ierr_set(e, IERR_CONFIG, "MONGO_HOST: \"%.200s\" is not a host name",
			                host);
	}
	buf_printf(u, "%s:%lld/", host, (long long)port);
	return 0;
}

/* The URI from MONGO_URI or from the individual keys. */
static mongoc_uri_t *make_uri(const struct config *cfg, struct ierr *e)
{
	const char *text = config_str(cfg, "MONGO_URI");
	bson_error_t berr;
	mongoc_uri_t *uri;
	struct buf u = {0};

	if (text[0] != '\0') {
		static const char *const ignored[] = {
		    "MONGO_HOST",        "MONGO_PORT", "MONGO_USER",       "MONGO_PASSWORD",
		    "MONGO_AUTH_SOURCE", "MONGO_TLS",  "MONGO_TLS_CA_FILE"};

		for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++) {
			if (config_is_set(cfg, ignored[i]))
				log_event(LOG_WARNING, "MONGO_URI is set: key ignored", "key",
				          ignored[i], NULL);
		}
		uri = mongoc_uri_new_with_error(text, &berr);
		if (uri == NULL) {
			/* libmongoc's parse messages name the problem, not the URI;
			 * scrub anyway: the whole URI is a registered secret. */
			log_scrub(berr.message, sizeof(berr.message));
			ierr_set(e, IERR_CONFIG, "MONGO_URI: %s", berr.message);
			return NULL;
		}
		if (mongoc_uri_get_password(uri) != NULL)
			log_add_secret(mongoc_uri_get_password(uri));
		return uri;
	}

	if (build_host_uri(&u, config_str(cfg, "MONGO_HOST"), config_int(cfg, "MONGO_PORT"), e) !=
	    0) {
		buf_free(&u);
		return NULL;
	}
	uri = mongoc_uri_new_with_error(buf_cstr(&u), &berr);
	buf_free(&u);
	if (uri == NULL) {
		ierr_set(e, IERR_CONFIG, "MONGO_HOST: %s", berr.message);
		return NULL;
	}
	if (config_str(cfg, "MONGO_USER")[0] != '\0') {
		if (!mongoc_uri_set_username(uri, config_str(cfg, "MONGO_USER")) ||
		    !mongoc_uri_set_password(uri, config_str(cfg, "MONGO_PASSWORD")) ||
		    !mongoc_uri_set_auth_source(uri, config_str(cfg, "MONGO_AUTH_SOURCE"))) {
			mongoc_uri_destroy(uri);
			ierr_set(
			    e, IERR_CONFIG,
			    "MONGO_USER, MONGO_PASSWORD or MONGO_AUTH_SOURCE: not valid UTF-8");
			return NULL;
		}
	}
	if (config_bool(cfg, "MONGO_TLS")) {
		mongoc_uri_set_option_as_bool(uri, MONGOC_URI_TLS, true);
		if (config_str(cfg, "MONGO_TLS_CA_FILE")[0] != '\0')
			mongoc_uri_set_option_as_utf8(uri, MONGOC_URI_TLSCAFILE,
			                              config_str(cfg, "MONGO_TLS_CA_FILE"));
	}
	return uri;
}

/* Duration keys come in milliseconds (config.h); URI options are int32. */
static int32_t ms_int32(int64_t ms)
{
	return ms <= 0 ? 0 : ms >= INT32_MAX ? INT32_MAX : (int32_t)ms;
}

/* "mongodb host:port/db" from the parsed URI (first seed host). */
static void describe(struct source *s, const mongoc_uri_t *uri)
{
	const mongoc_host_list_t *hosts = mongoc_uri_get_hosts(uri);
	const char *host = hosts ? hosts->host_and_port : mongoc_uri_get_srv_hostname(uri);

	snprintf(s->where, sizeof(s->where), "mongodb %.256s/%.256s", host ? host : "?", s->dbname);
}

static void mongo_close(struct source *s)
{
	if (s == NULL)
		return;
	if (s->session)
		mongoc_client_session_destroy(s->session);
	if (s->plain)
		mongoc_client_session_destroy(s->plain);
	if (s->db)
		mongoc_database_destroy(s->db);
	if (s->client)
		mongoc_client_destroy(s->client);
	free(s->dbname);
	strlist_free(&s->colls);
	schema_infer_free(&s->infer);
	free(s);
	/* No mongoc_cleanup(): it runs once per process and a later open() (with
	 * --interval) could not mongoc_init() again. */
}

static struct source *mongo_open(const struct config *cfg, struct ierr *e)
{
	static bool log_handler_set;
	struct source *s;
	mongoc_uri_t *uri;
	bson_error_t berr;
	bson_t ping = BSON_INITIALIZER;
	const char *dbname, *snap;
	int32_t connect_ms = ms_int32(config_int(cfg, "SOURCE_CONNECT_TIMEOUT"));

	mongoc_init();
	if (!log_handler_set) {
		mongoc_log_set_handler(mongoc_log_to_ingesta, NULL);
		log_handler_set = true;
	}

	uri = make_uri(cfg, e);
	if (uri == NULL)
		return NULL;
	dbname = config_str(cfg, "MONGO_DATABASE");
	if (dbname[0] == '\0' && mongoc_uri_get_database(uri) != NULL)
		dbname = mongoc_uri_get_database(uri);
	if (dbname[0] == '\0') {
		mongoc_uri_destroy(uri);
		ierr_set(e, IERR_CONFIG, "MONGO_DATABASE: required (the database to extract)");
		return NULL;
	}

	s = xcalloc(1, sizeof(*s));
	s->dbname = xstrdup(dbname);
	s->batch_size = config_int(cfg, "MONGO_BATCH_SIZE");
	s->query_timeout_ms = config_int(cfg, "SOURCE_QUERY_TIMEOUT");
	s->include_views = config_bool(cfg, "INCLUDE_VIEWS");
	snap = config_str(cfg, "MONGO_SNAPSHOT");
	s->snapshot = strcmp(snap, "true") == 0    ? SNAP_ON
	              : strcmp(snap, "false") == 0 ? SNAP_OFF
	                                           : SNAP_AUTO;
	describe(s, uri);

	/* Explicit URI options win over the generic timeout. */
	if (connect_ms > 0) {
		if (!mongoc_uri_has_option(uri, MONGOC_URI_CONNECTTIMEOUTMS))
			mongoc_uri_set_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS,
			                               connect_ms);
		if (!mongoc_uri_has_option(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS))
			mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS,
			                               connect_ms);
	}
	mongoc_uri_set_appname(uri, "ingesta");

	s->client = mongoc_client_new_from_uri_with_error(uri, &berr);
	mongoc_uri_destroy(uri);
	if (s->client == NULL) {
		fail_mongoc(s, e, &berr, "%s", "client");
		mongo_close(s);
		return NULL;
	}
	mongoc_client_set_error_api(s->client, MONGOC_ERROR_API_VERSION_2);
	s->db = mongoc_client_get_database(s->client, s->dbname);

	/* Connect and authenticate now, so a wrong password or host fails here
	 * rather than at the first collection. ping needs no privileges. */
	BSON_APPEND_INT32(&ping, "ping", 1);
	if (!mongoc_database_command_simple(s->db, &ping, NULL, NULL, &berr)) {
		bson_destroy(&ping);
		fail_mongoc(s, e, &berr, "%s", "connect");
		mongo_close(s);
		return NULL;
	}
	bson_destroy(&ping);
	return s;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int mongo_list_tables(struct source *s, struct strlist *out, struct ierr *e)
{
	mongoc_cursor_t *cur;
	const bson_t *doc;
	bson_error_t berr;
	size_t first = out->len;

	strlist_free(&s->colls);
	/* listCollections rather than mongoc_database_get_collection_names_with_opts:
	 * it also says which entries are views. */
	cur = mongoc_database_find_collections_with_opts(s->db, NULL);
	while (mongoc_cursor_next(cur, &doc)) {
		bson_iter_t it;
		const char *name = NULL, *type = "collection";

		if (bson_iter_init_find(&it, doc, "name") && BSON_ITER_HOLDS_UTF8(&it))
			name = bson_iter_utf8(&it, NULL);
		if (bson_iter_init_find(&it, doc, "type") && BSON_ITER_HOLDS_UTF8(&it))
			type = bson_iter_utf8(&it, NULL);
		if (name == NULL || strncmp(name, "system.", 7) == 0)
			continue;
		if (strcmp(type, "view") == 0 && !s->include_views)
			continue;
		if (strcmp(type, "collection") == 0)
			strlist_push(&s->colls, name);
		strlist_push(out, name);
	}
	if (mongoc_cursor_error(cur, &berr)) {
		mongoc_cursor_destroy(cur);
		return fail_mongoc(s, e, &berr, "%s", "listCollections");
	}
	mongoc_cursor_destroy(cur);
	qsort(out->items + first, out->len - first, sizeof(char *), cmp_str);
	if (s->colls.len > 1)
		qsort(s->colls.items, s->colls.len, sizeof(char *), cmp_str);
	return 0;
}

/* Can this server read at a point in time outside transactions? */
static bool server_has_snapshot_reads(struct source *s, struct ierr *e, bool *ok)
{
	bson_t cmd = BSON_INITIALIZER;
	bson_t reply;
	bson_error_t berr;
	bson_iter_t it;
	bool cluster = false;
	int64_t wire = 0;

	*ok = true;
	BSON_APPEND_INT32(&cmd, "hello", 1);
	if (!mongoc_client_command_simple(s->client, "admin", &cmd, NULL, &reply, &berr)) {
		bson_destroy(&cmd);
		bson_destroy(&reply);
		*ok = false;
		fail_mongoc(s, e, &berr, "%s", "hello");
		return false;
	}
	if (bson_iter_init_find(&it, &reply, "setName"))
		cluster = true;
	if (bson_iter_init_find(&it, &reply, "msg") && BSON_ITER_HOLDS_UTF8(&it) &&
	    strcmp(bson_iter_utf8(&it, NULL), "isdbgrid") == 0)
		cluster = true;
	if (bson_iter_init_find(&it, &reply, "maxWireVersion") && BSON_ITER_HOLDS_NUMBER(&it))
		wire = bson_iter_as_int64(&it);
	bson_destroy(&cmd);
	bson_destroy(&reply);
	return cluster && wire >= 13; /* 13 = MongoDB 5.0 */
}

/* Forget the previous run's snapshot (a source may be read by several runs). */
static void snapshot_reset(struct source *s)
{
	if (s->session) {
		mongoc_client_session_destroy(s->session);
		s->session = NULL;
	}
	if (s->plain) {
		mongoc_client_session_destroy(s->plain);
		s->plain = NULL;
	}
	s->at_set = false;
}

/* Does this run read in a snapshot? 1 yes, 0 no (said in the log), -1 error
 * (MONGO_SNAPSHOT=true and the server has none). */
static int snapshot_wanted(struct source *s, struct ierr *e)
{
	bool ok, capable;

	if (s->snapshot == SNAP_OFF) {
		log_event(LOG_INFO,
		          "mongodb: MONGO_SNAPSHOT=false: each collection read by its own cursor",
		          NULL);
		return 0;
	}
	capable = server_has_snapshot_reads(s, e, &ok);
	if (!ok)
		return -1;
	if (!capable) {
		if (s->snapshot == SNAP_ON)
			return ierr_set(
			    e, IERR_SOURCE,
			    "%s: MONGO_SNAPSHOT=true but the server has no snapshot reads "
			    "(needs a MongoDB 5.0+ replica set or sharded cluster)",
			    s->where);
		log_event(
		    LOG_INFO,
		    "mongodb: server has no snapshot reads (standalone, pre-5.0 or FerretDB): "
		    "each collection read by its own cursor, no common point in time",
		    NULL);
		return 0;
	}
	return 1;
}

/* One connection: libmongoc's snapshot session, whose first read fixes the
 * cluster time and whose later reads carry it. */
static int start_snapshot_session(struct source *s, struct ierr *e)
{
	mongoc_session_opt_t *opts;
	bson_error_t berr;

	opts = mongoc_session_opts_new();
	mongoc_session_opts_set_snapshot(opts, true);
	s->session = mongoc_client_start_session(s->client, opts, &berr);
	mongoc_session_opts_destroy(opts);
	if (s->session == NULL)
		return fail_mongoc(s, e, &berr, "%s", "snapshot session");
	log_event(LOG_INFO, "mongodb: snapshot session: every collection read at one point in time",
	          NULL);
	return 0;
}

static int mongo_begin_snapshot(struct source *s, struct ierr *e)
{
	int rc;

	snapshot_reset(s);
	rc = snapshot_wanted(s, e);
	return rc <= 0 ? rc : start_snapshot_session(s, e);
}

/*
 * A find at the run's cluster time, run as a command. libmongoc's own find
 * (mongoc_collection_find_with_opts) keeps only the level of a readConcern
 * given in its options (1.23: _mongoc_read_concern_new_from_iter), so the
 * command is built here: {find, filter, batchSize[, limit, singleBatch]
 * [, maxTimeMS]} with readConcern {level: "snapshot"} and, once the cluster
 * time is known, atClusterTime: MongoDB 5.0+ accepts both outside
 * transactions for find. It runs in s->plain (an explicit session without
 * causal consistency, so nothing else is added to the readConcern) on a
 * server chosen here; the cursor over its reply sends its getMores in the
 * same session to the same server (MongoDB refuses a getMore from another
 * session). probe: the first document only, to learn the cluster time.
 * Returns the reply's cursor, or NULL with *berr set.
 */
static mongoc_cursor_t *find_at_cluster_time(struct source *s, const char *table,
                                             const bson_t *filter, bool probe, bson_t *probe_reply,
                                             bson_error_t *berr)
{
	mongoc_server_description_t *sd;
	bson_t cmd = BSON_INITIALIZER, opts = BSON_INITIALIZER, copts = BSON_INITIALIZER, rc, reply;
	uint32_t server_id;
	mongoc_cursor_t *cur = NULL;

	sd = mongoc_client_select_server(s->client, false, NULL, berr);
	if (sd == NULL)
		return NULL;
	server_id = mongoc_server_description_id(sd);
	mongoc_server_description_destroy(sd);

	BSON_APPEND_UTF8(&cmd, "find", table);
	BSON_APPEND_DOCUMENT(&cmd, "filter", filter);
	if (probe) {
		BSON_APPEND_INT64(&cmd, "limit", 1);
		BSON_APPEND_BOOL(&cmd, "singleBatch", true);
	} else {
		BSON_APPEND_INT64(&cmd, "batchSize", s->batch_size);
	}
	if (s->query_timeout_ms > 0)
		BSON_APPEND_INT64(&cmd, "maxTimeMS", s->query_timeout_ms);
	BSON_APPEND_DOCUMENT_BEGIN(&opts, "readConcern", &rc);
	BSON_APPEND_UTF8(&rc, "level", "snapshot");
	if (s->at_set)
		BSON_APPEND_TIMESTAMP(&rc, "atClusterTime", s->at_t, s->at_i);
	bson_append_document_end(&opts, &rc);
	BSON_APPEND_INT32(&opts, "serverId", (int32_t)server_id);
	BSON_APPEND_INT32(&copts, "serverId", (int32_t)server_id);
	BSON_APPEND_INT64(&copts, "batchSize", s->batch_size);
	if (!mongoc_client_session_append(s->plain, &opts, berr) ||
	    !mongoc_client_session_append(s->plain, &copts, berr))
		goto out;
	if (!mongoc_database_read_command_with_opts(s->db, &cmd, NULL, &opts, &reply, berr)) {
		bson_destroy(&reply);
		goto out;
	}
	if (probe_reply)
		bson_copy_to(&reply, probe_reply);
	/* Takes the reply; a cursor still open on the server is killed on destroy. */
	cur = mongoc_cursor_new_from_command_reply_with_opts(s->client, &reply, &copts);
out:
	bson_destroy(&cmd);
	bson_destroy(&opts);
	bson_destroy(&copts);
	return cur;
}

/* A session for reads at a given cluster time: no causal consistency (that
 * would add afterClusterTime), no snapshot option (libmongoc would fix its
 * own time). */
static int start_plain_session(struct source *s, struct ierr *e)
{
	mongoc_session_opt_t *opts = mongoc_session_opts_new();
	bson_error_t berr;

	mongoc_session_opts_set_causal_consistency(opts, false);
	s->plain = mongoc_client_start_session(s->client, opts, &berr);
	mongoc_session_opts_destroy(opts);
	if (s->plain == NULL)
		return fail_mongoc(s, e, &berr, "%s", "session");
	return 0;
}

/* The cluster time the server picks for a snapshot read: a find of one
 * document with readConcern "snapshot" and no time; MongoDB 5.0+ answers with
 * cursor.atClusterTime (the Snapshot Sessions spec takes it from there too).
 * Of the first collection by name that this user may read (INCLUDE_TABLES
 * may list only some of them). 1 with *t, *i; 0 when the reply has none; 2
 * when no collection may be read (Unauthorized, 13); -1 error. */
static int probe_cluster_time(struct source *s, uint32_t *t, uint32_t *i, struct ierr *e)
{
	bson_t filter = BSON_INITIALIZER;
	bson_error_t berr;
	int rc = 2;

	for (size_t k = 0; k < s->colls.len && rc == 2; k++) {
		const char *coll = s->colls.items[k];
		bson_t reply = BSON_INITIALIZER;
		bson_iter_t it, c;
		mongoc_cursor_t *cur = find_at_cluster_time(s, coll, &filter, true, &reply, &berr);

		if (cur == NULL) {
			bson_destroy(&reply);
			if (berr.domain == MONGOC_ERROR_SERVER && berr.code == 13)
				continue;
			rc = fail_mongoc(s, e, &berr,
			                 "collection \"%.200s\": snapshot cluster time", coll);
			break;
		}
		mongoc_cursor_destroy(cur);
		rc = 0;
		if (bson_iter_init_find(&it, &reply, "cursor") && BSON_ITER_HOLDS_DOCUMENT(&it) &&
		    bson_iter_recurse(&it, &c) && bson_iter_find(&c, "atClusterTime") &&
		    BSON_ITER_HOLDS_TIMESTAMP(&c)) {
			bson_iter_timestamp(&c, t, i);
			rc = *t != 0 || *i != 0;
		}
		bson_destroy(&reply);
	}
	bson_destroy(&filter);
	return rc;
}

/* COLLECT_PARALLEL: without a snapshot (FerretDB, a standalone mongod,
 * MONGO_SNAPSHOT=false) each collection is read at its own time anyway, so
 * other connections read other collections the same way. With one, the
 * first connection makes a snapshot read to learn the cluster time the
 * server picks, then every connection (s too) reads each collection with
 * readConcern {level: "snapshot", atClusterTime: that time}: every
 * collection shows the same instant, whichever connection reads it. A
 * server that does not report the time leaves s alone in its snapshot
 * session. */
static int mongo_begin_shared_snapshot(struct source *s, struct source *const *more, int n,
                                       char *why, size_t whylen, struct ierr *e)
{
	uint32_t t = 0, i = 0;
	char at[48], conns[16];
	int rc;

	snapshot_reset(s);
	for (int k = 0; k < n; k++)
		snapshot_reset(more[k]);
	rc = snapshot_wanted(s, e);
	if (rc <= 0)
		return rc;
	if (start_plain_session(s, e) != 0)
		return -1;
	rc = probe_cluster_time(s, &t, &i, e);
	if (rc < 0)
		return -1;
	if (rc != 1) {
		snapshot_reset(s);
		snprintf(why, whylen, "%s",
		         rc == 0
		             ? "the server's snapshot read reported no atClusterTime to share"
		             : "no collection this user may read to take the snapshot's cluster "
		               "time from");
		return start_snapshot_session(s, e) == 0 ? 1 : -1;
	}
	for (int k = -1; k < n; k++) {
		struct source *c = k < 0 ? s : more[k];

		if (c != s && start_plain_session(c, e) != 0)
			return -1;
		c->at_t = t;
		c->at_i = i;
		c->at_set = true;
	}
	snprintf(at, sizeof(at), "Timestamp(%u, %u)", (unsigned)t, (unsigned)i);
	snprintf(conns, sizeof(conns), "%d", n + 1);
	log_event(LOG_INFO, "mongodb: snapshot reads: every connection reads at one cluster time",
	          "atClusterTime", at, "connections", conns, NULL);
	return 0;
}

/* BSON types as schema.h names them; undefined counts as null (it is written
 * as null, TYPES.md). */
static enum infer_type infer_type_of(bson_type_t t)
{
	switch (t) {
	case BSON_TYPE_DOUBLE:
		return IT_DOUBLE;
	case BSON_TYPE_UTF8:
		return IT_STRING;
	case BSON_TYPE_DOCUMENT:
		return IT_OBJECT;
	case BSON_TYPE_ARRAY:
		return IT_ARRAY;
	case BSON_TYPE_BINARY:
		return IT_BINARY;
	case BSON_TYPE_UNDEFINED:
	case BSON_TYPE_NULL:
		return IT_NULL;
	case BSON_TYPE_OID:
		return IT_OBJECTID;
	case BSON_TYPE_BOOL:
		return IT_BOOL;
	case BSON_TYPE_DATE_TIME:
		return IT_DATE;
	case BSON_TYPE_REGEX:
		return IT_REGEX;
	case BSON_TYPE_DBPOINTER:
		return IT_DBPOINTER;
	case BSON_TYPE_CODE:
		return IT_JAVASCRIPT;
	case BSON_TYPE_SYMBOL:
		return IT_SYMBOL;
	case BSON_TYPE_CODEWSCOPE:
		return IT_JAVASCRIPT_WITH_SCOPE;
	case BSON_TYPE_INT32:
		return IT_INT32;
	case BSON_TYPE_TIMESTAMP:
		return IT_TIMESTAMP;
	case BSON_TYPE_INT64:
		return IT_INT64;
	case BSON_TYPE_DECIMAL128:
		return IT_DECIMAL128;
	case BSON_TYPE_MINKEY:
		return IT_MINKEY;
	case BSON_TYPE_MAXKEY:
		return IT_MAXKEY;
	default:
		return IT_STRING;
	}
}

/* The top-level fields of a document (already validated by bson_to_json). */
static void infer_doc(struct schema_infer *inf, const bson_t *doc)
{
	bson_iter_t it;

	schema_infer_doc(inf);
	if (!bson_iter_init(&it, doc))
		return;
	while (bson_iter_next(&it)) {
		const char *key = bson_iter_key(&it);

		schema_infer_field(inf, key, strlen(key), infer_type_of(bson_iter_type(&it)));
	}
}

/* The documents of `table` that match filter (empty: all). */
static int read_filter(struct source *s, const char *table, const bson_t *filter,
                       struct table_writer *w, struct ierr *e)
{
	const struct norm_opts *nopts = table_writer_opts(w);
	struct lossy *st = table_writer_lossy(w);
	mongoc_collection_t *coll;
	mongoc_cursor_t *cur;
	bson_t opts = BSON_INITIALIZER;
	const bson_t *doc;
	bson_error_t berr;
	uint64_t n = 0;
	int rc = 0;

	BSON_APPEND_INT64(&opts, "batchSize", s->batch_size);
	/* SOURCE_QUERY_TIMEOUT: MongoDB counts maxTimeMS over the find and all its
	 * getMores (server time, not time between batches); FerretDB 1.24 per
	 * command, i.e. per batch. */
	if (s->query_timeout_ms > 0)
		BSON_APPEND_INT64(&opts, "maxTimeMS", s->query_timeout_ms);
	if (s->session && !mongoc_client_session_append(s->session, &opts, &berr)) {
		bson_destroy(&opts);
		return fail_mongoc(s, e, &berr, "collection \"%.200s\"", table);
	}

	schema_infer_free(&s->infer);
	coll = mongoc_database_get_collection(s->db, table);
	if (s->at_set) {
		cur = find_at_cluster_time(s, table, filter, false, NULL, &berr);
		if (cur == NULL) {
			rc = fail_mongoc(s, e, &berr, "collection \"%.200s\"", table);
			goto out;
		}
	} else {
		cur = mongoc_collection_find_with_opts(coll, filter, &opts, NULL);
	}
	while (mongoc_cursor_next(cur, &doc)) {
		struct buf *b = table_writer_row_begin(w);

		n++;
		if (bson_to_json(b, doc, nopts, st, e) != 0) {
			ierr_prefix(e, "%s: collection \"%.200s\": document %llu", s->where, table,
			            (unsigned long long)n);
			rc = -1;
			break;
		}
		infer_doc(&s->infer, doc);
		if (table_writer_row_end(w, e) != 0) {
			rc = -1; /* cancelled, quota, disk: passed through unchanged */
			break;
		}
	}
	if (rc == 0 && mongoc_cursor_error(cur, &berr))
		rc = fail_mongoc(s, e, &berr, "collection \"%.200s\"", table);

	mongoc_cursor_destroy(cur);
out:
	mongoc_collection_destroy(coll);
	bson_destroy(&opts);
	return rc;
}

static int mongo_read_table(struct source *s, const char *table, struct table_writer *w,
                            struct ierr *e)
{
	bson_t filter = BSON_INITIALIZER;
	int rc = read_filter(s, table, &filter, w, e);

	bson_destroy(&filter);
	return rc;
}

/* ---- incremental: plan, high-water mark and range reads ----------------------------- */

/*
 * The cursor is a field (README "Incremental extraction"): `updatedAt`
 * (date), an integer version, a decimal, a string, or `_id` as an ObjectId
 * for insert-only collections. The plan (cursor_schema) groups the
 * collection's documents by the field's BSON type ($group on $type): one
 * type (int32 and int64 count as one) is a cursor of that type, null and
 * missing make it nullable, several types are refused (a $gt on a value of
 * one type never matches another type: those documents would be lost). The
 * high-water mark is the field of the first document of a find sorted on
 * the field descending (limit 1, an index on the field makes it a seek),
 * and the range is a find with the filter {field: {$gt: after, $lte:
 * through}} whose values are typed BSON values (int64, decimal128, date,
 * string, ObjectId) built from the watermark's text: the server compares
 * them, nothing is pasted. Texts: integers in decimal, decimal128 as
 * libbson prints it, dates as ISO 8601 UTC with milliseconds
 * ("2026-01-01T10:00:00.123Z"), ObjectIds in hex. Every read joins the
 * snapshot session when there is one; without one (standalone, FerretDB)
 * the plan, the mark and the range are separate reads of the live
 * collection (a document written in between with a cursor at or below the
 * mark is read by this run only if the range read sees it).
 */

/* The $type aliases the field's plan type matches. */
static void append_type_filter(bson_t *doc, const char *type)
{
	bson_t arr;

	if (strcmp(type, "int32") == 0 || strcmp(type, "int64") == 0) {
		BSON_APPEND_ARRAY_BEGIN(doc, "$type", &arr);
		BSON_APPEND_UTF8(&arr, "0", "int");
		BSON_APPEND_UTF8(&arr, "1", "long");
		bson_append_array_end(doc, &arr);
	} else {
		BSON_APPEND_UTF8(doc, "$type",
		                 strcmp(type, "decimal128") == 0 ? "decimal"
		                 : strcmp(type, "date") == 0     ? "date"
		                 : strcmp(type, "objectId") == 0 ? "objectId"
		                                                 : "string");
	}
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

/* "YYYY-MM-DD[T ]HH:MM:SS[.fff][Z|+00:00]" (UTC) -> ms since the epoch. */
static bool parse_iso_ms(const char *t, int64_t *ms)
{
	int y, mo, d, h, mi, sec, n = 0, frac = 0, digits = 0;
	const char *p;

	if (sscanf(t, "%4d-%2d-%2d%*1[T ]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 ||
	    n != 19)
		return false;
	p = t + n;
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++, digits++)
			if (digits < 3)
				frac = frac * 10 + (*p - '0');
		if (digits == 0)
			return false;
		for (; digits < 3; digits++)
			frac *= 10;
	}
	if (strcmp(p, "Z") != 0 && strcmp(p, "+00:00") != 0 && *p != '\0')
		return false;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return false;
	*ms = ((days_from_civil(y, (unsigned)mo, (unsigned)d) * 24 + h) * 60 + mi) * 60000 +
	      (int64_t)sec * 1000 + frac;
	return true;
}

static void format_iso_ms(int64_t ms, char *out, size_t n)
{
	int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
	time_t t = (time_t)secs;
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
	         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms - secs * 1000));
}

/* key: the cursor's text as the typed BSON value of the plan's type. */
static int append_cursor(struct source *s, const char *table, bson_t *doc, const char *key,
                         const char *type, const char *text, struct ierr *e)
{
	bool ok = true;

	if (strcmp(type, "int32") == 0 || strcmp(type, "int64") == 0) {
		char *end;
		long long v = strtoll(text, &end, 10);

		ok = *text != '\0' && *end == '\0';
		if (ok)
			BSON_APPEND_INT64(doc, key, v);
	} else if (strcmp(type, "decimal128") == 0) {
		bson_decimal128_t d;

		ok = bson_decimal128_from_string(text, &d);
		if (ok)
			BSON_APPEND_DECIMAL128(doc, key, &d);
	} else if (strcmp(type, "date") == 0) {
		int64_t ms;

		ok = parse_iso_ms(text, &ms);
		if (ok)
			BSON_APPEND_DATE_TIME(doc, key, ms);
	} else if (strcmp(type, "objectId") == 0) {
		bson_oid_t oid;

		ok = bson_oid_is_valid(text, strlen(text));
		if (ok) {
			bson_oid_init_from_string(&oid, text);
			BSON_APPEND_OID(doc, key, &oid);
		}
	} else {
		BSON_APPEND_UTF8(doc, key, text);
	}
	if (!ok)
		return ierr_set(e, IERR_SOURCE,
		                "%s: collection \"%.200s\": cursor value \"%.100s\" is not a %s",
		                s->where, table, text, type);
	return 0;
}

/* The cursor text of the value at it (the plan's types only). */
static char *cursor_text(bson_iter_t *it, char *kind)
{
	char tmp[BSON_DECIMAL128_STRING > 64 ? BSON_DECIMAL128_STRING : 64];

	*kind = 't';
	switch (bson_iter_type(it)) {
	case BSON_TYPE_INT32:
	case BSON_TYPE_INT64:
		*kind = 'i';
		snprintf(tmp, sizeof(tmp), "%lld", (long long)bson_iter_as_int64(it));
		return xstrdup(tmp);
	case BSON_TYPE_DECIMAL128: {
		bson_decimal128_t d;

		bson_iter_decimal128(it, &d);
		bson_decimal128_to_string(&d, tmp);
		return xstrdup(tmp);
	}
	case BSON_TYPE_DATE_TIME:
		format_iso_ms(bson_iter_date_time(it), tmp, sizeof(tmp));
		return xstrdup(tmp);
	case BSON_TYPE_OID:
		bson_oid_to_string(bson_iter_oid(it), tmp);
		return xstrdup(tmp);
	case BSON_TYPE_UTF8:
		return xstrdup(bson_iter_utf8(it, NULL));
	default:
		return NULL;
	}
}

/* Find options with the session (when any) and SOURCE_QUERY_TIMEOUT. Not
 * used at a shared cluster time (at_set): incremental runs never share one. */
static int read_opts(struct source *s, const char *table, bson_t *opts, struct ierr *e)
{
	bson_error_t berr;

	if (s->query_timeout_ms > 0)
		BSON_APPEND_INT64(opts, "maxTimeMS", s->query_timeout_ms);
	if (s->session && !mongoc_client_session_append(s->session, opts, &berr))
		return fail_mongoc(s, e, &berr, "collection \"%.200s\"", table);
	return 0;
}

static int mongo_cursor_schema(struct source *s, const char *table, const char *column,
                               struct table_schema *out, struct ierr *e)
{
	mongoc_collection_t *coll;
	mongoc_cursor_t *cur;
	bson_t pipeline = BSON_INITIALIZER, opts = BSON_INITIALIZER, stage, group, id;
	const bson_t *doc;
	bson_error_t berr;
	char path[300], types[512] = "";
	bool nullable = false, any = false, ints = true;
	int ntypes = 0, rc = 0;

	if (column[0] == '$' || strlen(column) > 250)
		return ierr_set(e, IERR_CONFIG,
		                "collection \"%.200s\": cursor field \"%.100s\" is not a field "
		                "name",
		                table, column);
	snprintf(path, sizeof(path), "$%s", column);
	BSON_APPEND_DOCUMENT_BEGIN(&pipeline, "0", &stage);
	BSON_APPEND_DOCUMENT_BEGIN(&stage, "$group", &group);
	BSON_APPEND_DOCUMENT_BEGIN(&group, "_id", &id);
	BSON_APPEND_UTF8(&id, "$type", path);
	bson_append_document_end(&group, &id);
	bson_append_document_end(&stage, &group);
	bson_append_document_end(&pipeline, &stage);
	if (read_opts(s, table, &opts, e) != 0) {
		bson_destroy(&pipeline);
		bson_destroy(&opts);
		return -1;
	}
	coll = mongoc_database_get_collection(s->db, table);
	cur = mongoc_collection_aggregate(coll, MONGOC_QUERY_NONE, &pipeline, &opts, NULL);
	while (mongoc_cursor_next(cur, &doc)) {
		bson_iter_t it;
		const char *t;

		if (!bson_iter_init_find(&it, doc, "_id") || !BSON_ITER_HOLDS_UTF8(&it))
			continue;
		t = bson_iter_utf8(&it, NULL);
		if (strcmp(t, "missing") == 0 || strcmp(t, "null") == 0 ||
		    strcmp(t, "undefined") == 0) {
			nullable = true;
			continue;
		}
		any = true;
		ints = ints && (strcmp(t, "int") == 0 || strcmp(t, "long") == 0);
		snprintf(types + strlen(types), sizeof(types) - strlen(types), "%s%s",
		         ntypes++ ? "," : "", t);
	}
	if (mongoc_cursor_error(cur, &berr))
		rc = fail_mongoc(s, e, &berr, "collection \"%.200s\": cursor field types", table);
	mongoc_cursor_destroy(cur);
	mongoc_collection_destroy(coll);
	bson_destroy(&pipeline);
	bson_destroy(&opts);
	if (rc != 0 || !any)
		return rc; /* no document has the field: no column */
	if (ints) {
		snprintf(types, sizeof(types), "%s", strstr(types, "long") ? "int64" : "int32");
	} else if (ntypes == 1) {
		static const char *const names[][2] = {
		    {"decimal", "decimal128"}, {"objectId", "objectId"}, {"date", "date"},
		    {"string", "string"},      {"double", "double"},     {"bool", "bool"}};

		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (strcmp(types, names[i][0]) == 0) {
				snprintf(types, sizeof(types), "%s", names[i][1]);
				break;
			}
	} else {
		char mixed[sizeof(types) + 8];

		snprintf(mixed, sizeof(mixed), "mixed(%s)", types);
		snprintf(types, sizeof(types), "%s", mixed);
	}
	table_schema_add_column(out, column, strlen(column), types, nullable);
	table_schema_add_pk(out, "_id");
	out->inferred = true;
	return 0;
}

/* The server's clock (hello's localTime), or this host's when it has none. */
static int64_t server_now_ms(struct source *s)
{
	bson_t cmd = BSON_INITIALIZER, reply;
	bson_error_t berr;
	bson_iter_t it;
	int64_t ms = now_ms();

	BSON_APPEND_INT32(&cmd, "hello", 1);
	if (mongoc_client_command_simple(s->client, "admin", &cmd, NULL, &reply, &berr) &&
	    bson_iter_init_find(&it, &reply, "localTime") && BSON_ITER_HOLDS_DATE_TIME(&it))
		ms = bson_iter_date_time(&it);
	bson_destroy(&cmd);
	bson_destroy(&reply);
	return ms;
}

/* The first document of filter (sorted on column descending when sort). */
static int find_one(struct source *s, const char *table, const bson_t *filter, const char *sort,
                    char **text, char *kind, bool *found, struct ierr *e)
{
	mongoc_collection_t *coll;
	mongoc_cursor_t *cur;
	bson_t opts = BSON_INITIALIZER, sub;
	const bson_t *doc;
	bson_error_t berr;
	int rc = 0;

	BSON_APPEND_INT64(&opts, "limit", 1);
	if (sort) {
		BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sub);
		BSON_APPEND_INT32(&sub, sort, -1);
		bson_append_document_end(&opts, &sub);
		BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &sub);
		BSON_APPEND_INT32(&sub, sort, 1);
		bson_append_document_end(&opts, &sub);
	}
	if (read_opts(s, table, &opts, e) != 0) {
		bson_destroy(&opts);
		return -1;
	}
	*found = false;
	coll = mongoc_database_get_collection(s->db, table);
	cur = mongoc_collection_find_with_opts(coll, filter, &opts, NULL);
	if (mongoc_cursor_next(cur, &doc)) {
		bson_iter_t it, v;

		*found = true;
		if (sort && text && bson_iter_init(&it, doc) &&
		    bson_iter_find_descendant(&it, sort, &v))
			*text = cursor_text(&v, kind);
	}
	if (mongoc_cursor_error(cur, &berr))
		rc = fail_mongoc(s, e, &berr, "collection \"%.200s\": high-water mark", table);
	mongoc_cursor_destroy(cur);
	mongoc_collection_destroy(coll);
	bson_destroy(&opts);
	return rc;
}

static int mongo_cursor_high(struct source *s, const char *table, const struct range_req *rq,
                             struct cursor_val *high, bool *has_nulls, struct ierr *e)
{
	bson_t filter = BSON_INITIALIZER, cond;
	bool found;
	int rc = -1;

	high->text = NULL;
	high->kind = rq->kind == CK_INT ? 'i' : 't';
	BSON_APPEND_DOCUMENT_BEGIN(&filter, rq->column, &cond);
	append_type_filter(&cond, rq->type);
	if (rq->after && append_cursor(s, table, &cond, "$gt", rq->type, rq->after->text, e) != 0) {
		bson_append_document_end(&filter, &cond);
		goto out;
	}
	if (rq->lag_ms > 0 && rq->kind == CK_DATETIME)
		BSON_APPEND_DATE_TIME(&cond, "$lte", server_now_ms(s) - rq->lag_ms);
	bson_append_document_end(&filter, &cond);
	if (find_one(s, table, &filter, rq->column, &high->text, &high->kind, &found, e) != 0)
		goto out;
	if (has_nulls) {
		bson_t nf = BSON_INITIALIZER;

		BSON_APPEND_NULL(&nf, rq->column); /* null or missing */
		rc = find_one(s, table, &nf, NULL, NULL, NULL, has_nulls, e);
		bson_destroy(&nf);
		if (rc != 0)
			goto out;
	}
	rc = 0;
out:
	bson_destroy(&filter);
	return rc;
}

static int mongo_read_range(struct source *s, const char *table, const struct range_req *rq,
                            struct table_writer *w, struct ierr *e)
{
	bson_t filter = BSON_INITIALIZER, arr, alt, cond;
	bson_t *range = &filter;
	int rc = -1;

	if (rq->snapshot && rq->through == NULL) {
		BSON_APPEND_NULL(&filter, rq->column);
	} else {
		if (rq->snapshot) {
			/* {$or: [{c: {$lte: T}}, {c: null}]} */
			BSON_APPEND_ARRAY_BEGIN(&filter, "$or", &arr);
			BSON_APPEND_DOCUMENT_BEGIN(&arr, "0", &alt);
			range = &alt;
		}
		BSON_APPEND_DOCUMENT_BEGIN(range, rq->column, &cond);
		if (!rq->snapshot && rq->after &&
		    append_cursor(s, table, &cond, "$gt", rq->type, rq->after->text, e) != 0)
			rc = -2;
		if (rc == -1 &&
		    append_cursor(s, table, &cond, "$lte", rq->type, rq->through->text, e) != 0)
			rc = -2;
		bson_append_document_end(range, &cond);
		if (rq->snapshot) {
			bson_t nul;

			bson_append_document_end(&arr, &alt);
			BSON_APPEND_DOCUMENT_BEGIN(&arr, "1", &nul);
			BSON_APPEND_NULL(&nul, rq->column);
			bson_append_document_end(&arr, &nul);
			bson_append_array_end(&filter, &arr);
		}
		if (rc == -2) {
			bson_destroy(&filter);
			return -1;
		}
	}
	rc = read_filter(s, table, &filter, w, e);
	bson_destroy(&filter);
	return rc;
}

/* The schema of the documents the last read_table() of `table` returned:
 * fields in first-seen order, types merged as schema.h says, _id the key. */
static int mongo_inferred_schema(struct source *s, const char *table, struct table_schema *out,
                                 struct ierr *e)
{
	char n[32], max[32];

	(void)e;
	if (s->infer.dropped_fields > 0) {
		snprintf(n, sizeof(n), "%llu", (unsigned long long)s->infer.dropped_fields);
		snprintf(max, sizeof(max), "%d", SCHEMA_INFER_MAX_FIELDS);
		log_event(LOG_WARNING,
		          "mongodb: more distinct fields than the inferred schema keeps; the rest "
		          "are left out of it (the rows keep them)",
		          "collection", table, "max_fields", max, "occurrences_left_out", n, NULL);
	}
	schema_infer_result(&s->infer, out);
	schema_infer_free(&s->infer);
	return 0;
}

const struct source_ops source_mongo = {
    .db_type = "mongodb",
    .legacy_bucket_key = "S3_BUCKET_MS3",
    .open = mongo_open,
    .list_tables = mongo_list_tables,
    .begin_snapshot = mongo_begin_snapshot,
    .begin_shared_snapshot = mongo_begin_shared_snapshot,
    .read_table = mongo_read_table,
    .inferred_schema = mongo_inferred_schema,
    .cursor_high = mongo_cursor_high,
    .read_range = mongo_read_range,
    .cursor_schema = mongo_cursor_schema,
    .close = mongo_close,
};
