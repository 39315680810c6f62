/*
 * main.c - the `ingesta` command: parse the command line, load the
 * configuration, set up logging and signals, and dispatch to a subcommand.
 *
 * Every subcommand returns one of the exit codes in err.h; this is the only
 * place that turns an error struct into a message on stderr and an exit code.
 */
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog.h"
#include "collector.h"
#include "config.h"
#include "demo.h"
#include "err.h"
#include "ingesta_build.h"
#include "log.h"
#include "notify.h"
#include "ops.h"
#include "spool.h"
#include "status.h"
#include "uploader.h"
#include "util.h"

struct cli {
	const char *command;
	const char *config_path;
	const char *overrides[128];
	int noverrides;
	bool json;
	bool once;
	bool check;
	const char *tables[64];
	int ntables;
	const char *state;  /* list --state */
	const char *source; /* list --source */
	bool all_failed;    /* replay --all-failed */
	int64_t ids[256];   /* replay ID... */
	int nids;
	const char *older_than;   /* gc --older-than */
	bool drop_quarantined;    /* gc --drop-quarantined */
	const char *max_age;      /* status --check --max-age */
	const char *max_fraction; /* status --check --max-spool-fraction */
	bool no_uploader_check;   /* status --check --no-uploader-check */
	const char *format;       /* catalog --format ddl|json */
	bool apply;               /* catalog --apply */
	const char *to;           /* reset --to */
};

static const char usage_text[] =
    "usage: ingesta COMMAND [--config FILE] [--set KEY=VALUE]... [options]\n"
    "\n"
    "commands:\n"
    "  collect   extract every table of one source into the spool\n"
    "            [--interval SECONDS] repeat (INGESTION_INTERVAL)\n"
    "  upload    ship completed partitions from the spool to S3 or file://\n"
    "            [--once] drain the spool and exit (exit 5 if anything is left failed)\n"
    "  status    what the spool holds, what is stuck and why [--json]\n"
    "            [--check [--max-age DURATION] [--max-spool-fraction F]\n"
    "             [--no-uploader-check]] one line, exit 6 when unhealthy\n"
    "  list      the segments [--state S[,S]...] [--source NAME] [--table NAME] [--json]\n"
    "  replay    re-queue failed segments: --all-failed, or segment IDs\n"
    "            (quarantined ones only when their file matches its checksum again)\n"
    "  verify    re-hash spooled files, quarantine mismatches (exit 6 if any) [--json]\n"
    "  gc        delete uploaded files past RETENTION, rows of segments uploaded more\n"
    "            than --older-than DURATION ago (default 7d), then VACUUM\n"
    "            [--drop-quarantined] [--json]\n"
    "  extract   print the NDJSON of the source to stdout, no spool [--table NAME]...\n"
    "  catalog   Athena DDL (or Glue TableInput JSON) for the source's tables, the\n"
    "            commit log and the _latest/_daily views [--format ddl|json]\n"
    "            [--apply] register them in Glue (GLUE_DATABASE) instead\n"
    "  reset     --table T [--to VALUE]: move an incremental table's watermark back,\n"
    "            or clear it (the next run is a snapshot); refused while a collector\n"
    "            of the source runs (exit 6)\n"
    "  demo      the whole pipeline on a bundled SQLite database -> ./demo-bucket\n"
    "  help-config  print the configuration reference (Markdown)\n"
    "  version   print the version\n"
    "\n"
    "Configuration: KEY=VALUE file (--config), then the environment, then --set.\n"
    "Exit codes: 0 ok, 1 internal error, 2 usage/configuration, 3 source, 4 spool,\n"
    "5 uploads left failed (catalog --apply: Glue failed), 6 check failed,\n"
    "7 interrupted. See README.md.\n";

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		ingesta_reopen_requested = 1;
	else
		ingesta_stop_requested = 1;
}

static void install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static int exit_code_for(const struct ierr *e)
{
	switch (e->code) {
	case IERR_CONFIG:
		return EXIT_USAGE;
	case IERR_SOURCE:
		return EXIT_SOURCE;
	case IERR_SPOOL:
	case IERR_NOSPACE:
	case IERR_IO:
		return EXIT_SPOOL;
	case IERR_INTERRUPTED:
		return EXIT_INTERRUPTED;
	default:
		return EXIT_FAILURE_GENERIC;
	}
}

static int fail(const char *command, struct ierr *e)
{
	char msg[sizeof(e->msg)];

	snprintf(msg, sizeof(msg), "%s", e->msg);
	log_scrub(msg, sizeof(msg));
	fprintf(stderr, "ingesta %s: %s\n", command, msg);
	return exit_code_for(e);
}

static int parse_args(int argc, char **argv, struct cli *c)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"set", required_argument, NULL, 's'},
	    {"json", no_argument, NULL, 'j'},
	    {"once", no_argument, NULL, 'o'},
	    {"check", no_argument, NULL, 'k'},
	    {"interval", required_argument, NULL, 'i'},
	    {"table", required_argument, NULL, 't'},
	    {"state", required_argument, NULL, 'S'},
	    {"source", required_argument, NULL, 'O'},
	    {"all-failed", no_argument, NULL, 'A'},
	    {"older-than", required_argument, NULL, 'g'},
	    {"drop-quarantined", no_argument, NULL, 'Q'},
	    {"max-age", required_argument, NULL, 'm'},
	    {"max-spool-fraction", required_argument, NULL, 'f'},
	    {"no-uploader-check", no_argument, NULL, 'U'},
	    {"format", required_argument, NULL, 'F'},
	    {"apply", no_argument, NULL, 'P'},
	    {"to", required_argument, NULL, 'T'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	static char interval[64];
	int ch;

	optind = 2;
	while ((ch = getopt_long(argc, argv, "c:s:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			c->config_path = optarg;
			break;
		case 's':
			if (c->noverrides < 126)
				c->overrides[c->noverrides++] = optarg;
			break;
		case 'j':
			c->json = true;
			break;
		case 'o':
			c->once = true;
			break;
		case 'k':
			c->check = true;
			break;
		case 'i':
			snprintf(interval, sizeof(interval), "INGESTION_INTERVAL=%s", optarg);
			if (c->noverrides < 126)
				c->overrides[c->noverrides++] = interval;
			break;
		case 't':
			if (c->ntables < 63)
				c->tables[c->ntables++] = optarg;
			break;
		case 'S':
			c->state = optarg;
			break;
		case 'O':
			c->source = optarg;
			break;
		case 'A':
			c->all_failed = true;
			break;
		case 'g':
			c->older_than = optarg;
			break;
		case 'Q':
			c->drop_quarantined = true;
			break;
		case 'm':
			c->max_age = optarg;
			break;
		case 'f':
			c->max_fraction = optarg;
			break;
		case 'U':
			c->no_uploader_check = true;
			break;
		case 'F':
			c->format = optarg;
			break;
		case 'P':
			c->apply = true;
			break;
		case 'T':
			c->to = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			exit(0);
		default:
			return -1;
		}
	}
	/* Only replay takes operands: segment ids. */
	for (; optind < argc && strcmp(c->command, "replay") == 0; optind++) {
		char *end = NULL;
		long long id = strtoll(argv[optind], &end, 10);

		if (end == argv[optind] || *end != '\0' || id <= 0 || c->nids == 256)
			break;
		c->ids[c->nids++] = id;
	}
	if (optind < argc) {
		fprintf(stderr, "ingesta %s: unexpected argument \"%s\"\n", c->command,
		        argv[optind]);
		return -1;
	}
	return 0;
}

static struct config *load(struct cli *c, struct ierr *e)
{
	struct config *cfg = config_load(c->config_path, c->overrides, e);
	int level;

	if (cfg == NULL)
		return NULL;
	level = log_level_parse(config_str(cfg, "LOG_LEVEL"));
	log_setup(level < 0 ? LOG_INFO : (enum log_level)level,
	          strcmp(config_str(cfg, "LOG_FORMAT"), "json") == 0, config_str(cfg, "LOG_FILE"));
	if (config_bool(cfg, "S3_INSECURE_SKIP_VERIFY"))
		log_event(LOG_WARNING,
		          "S3_INSECURE_SKIP_VERIFY=true: TLS certificates are NOT verified", NULL);
	return cfg;
}

static void summary_line(const struct collect_summary *s)
{
	char line[1400];

	snprintf(line, sizeof(line), "extraction complete: %d tables, %llu rows -> %s", s->tables,
	         (unsigned long long)s->rows, s->bucket);
	log_event(LOG_INFO, line, "run", s->run_id, NULL);
}

static int collect_loop(struct config *cfg)
{
	int64_t interval_ms = config_int(cfg, "INGESTION_INTERVAL");
	struct collect_summary sum;
	struct ierr e = {0};
	int rc = EXIT_OK;

	for (;;) {
		if (collector_run(cfg, &sum, &e) == 0) {
			summary_line(&sum);
			rc = EXIT_OK;
		} else {
			/* A driver may report a signal-broken read as a source error;
			 * what happened is that we were asked to stop. */
			if (ingesta_stop_requested && e.code != IERR_CONFIG)
				e.code = IERR_INTERRUPTED;
			rc = fail("collect", &e);
			log_event(LOG_ERROR, "extraction failed", "error", e.msg, NULL);
			if (interval_ms == 0 || e.code == IERR_CONFIG || ingesta_stop_requested)
				return rc;
		}
		if (interval_ms == 0)
			return rc;
		for (int64_t waited = 0; waited < interval_ms && !ingesta_stop_requested;
		     waited += 200)
			usleep(200000);
		if (ingesta_stop_requested)
			return EXIT_OK;
	}
}

static int cmd_collect(struct config *cfg)
{
	struct service_hooks h = {.ready = false};
	struct ierr e = {0};
	int rc;

	/* The service thread reopens LOG_FILE on SIGHUP during long tables. */
	if (service_start(&h, &e) != 0)
		log_event(LOG_WARNING, "service thread not started", "error", e.msg, NULL);
	rc = collect_loop(cfg);
	service_stop();
	return rc;
}

static int cmd_upload(struct config *cfg, const struct cli *c)
{
	int64_t failed = 0;
	struct ierr e = {0};

	if (uploader_run(cfg, c->once, &failed, &e) != 0)
		return fail("upload", &e);
	if (c->once && failed > 0) {
		fprintf(stderr, "ingesta upload: %lld segment(s) failed; see `ingesta status`\n",
		        (long long)failed);
		return EXIT_UPLOAD;
	}
	return EXIT_OK;
}

static int usage_error(const char *command, const char *fmt, const char *arg)
{
	fprintf(stderr, "ingesta %s: ", command);
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	return EXIT_USAGE;
}

static int status_check_cmd(struct config *cfg, const struct cli *c, struct spool *sp)
{
	struct status_check_opts o = {
	    .max_age_ms = STATUS_CHECK_MAX_AGE_MS,
	    .max_spool_fraction = STATUS_CHECK_MAX_SPOOL_FRACTION,
	    .quota_bytes = config_int(cfg, "SPOOL_MAX_BYTES"),
	    .require_uploader = !c->no_uploader_check,
	};
	struct ierr e = {0};
	int rc;

	if (c->max_age && ops_parse_duration(c->max_age, &o.max_age_ms) != 0)
		return usage_error("status", "--max-age: not a duration: \"%s\"", c->max_age);
	if (c->max_fraction) {
		char *end = NULL;

		o.max_spool_fraction = strtod(c->max_fraction, &end);
		if (end == c->max_fraction || *end != '\0' || o.max_spool_fraction <= 0 ||
		    o.max_spool_fraction > 1)
			return usage_error("status",
			                   "--max-spool-fraction: not a fraction in (0, 1]: \"%s\"",
			                   c->max_fraction);
	}
	rc = status_check(sp, &o, stdout, &e);
	if (rc < 0)
		return fail("status", &e);
	return rc ? EXIT_CHECK : EXIT_OK;
}

static int cmd_status(struct config *cfg, const struct cli *c)
{
	struct ierr e = {0};
	struct spool *sp = ops_open(config_str(cfg, "SPOOL_DIR"), &e);
	struct status_opts o = {.json = c->json, .quota_bytes = config_int(cfg, "SPOOL_MAX_BYTES")};
	int rc;

	if (sp == NULL)
		return fail("status", &e);
	if (c->check) {
		rc = status_check_cmd(cfg, c, sp);
		spool_close(sp);
		return rc;
	}
	rc = status_print(sp, &o, stdout, &e);
	spool_close(sp);
	return rc == 0 ? EXIT_OK : fail("status", &e);
}

static int cmd_list(struct config *cfg, const struct cli *c)
{
	struct list_opts o = {.json = c->json,
	                      .states = c->state,
	                      .source = c->source,
	                      .table = c->ntables ? c->tables[0] : NULL};
	struct ierr e = {0};
	struct spool *sp = ops_open(config_str(cfg, "SPOOL_DIR"), &e);
	int rc;

	if (sp == NULL)
		return fail("list", &e);
	rc = ops_list(sp, &o, stdout, &e);
	spool_close(sp);
	return rc < 0 ? fail("list", &e) : EXIT_OK;
}

static int cmd_replay(struct config *cfg, const struct cli *c)
{
	struct replay_result r;
	struct ierr e = {0};
	struct spool *sp;
	int rc;

	if (c->all_failed == (c->nids > 0))
		return usage_error("replay", "%s",
		                   "give --all-failed or segment IDs (see `ingesta list "
		                   "--state failed,quarantined`)");
	sp = ops_open(config_str(cfg, "SPOOL_DIR"), &e);
	if (sp == NULL)
		return fail("replay", &e);
	rc = ops_replay(sp, c->all_failed ? NULL : c->ids, c->nids, stdout, &r, &e);
	spool_close(sp);
	if (rc < 0)
		return fail("replay", &e);
	return r.refused ? EXIT_CHECK : EXIT_OK;
}

static int cmd_verify(struct config *cfg, const struct cli *c)
{
	struct verify_result r;
	struct ierr e = {0};
	struct spool *sp = ops_open(config_str(cfg, "SPOOL_DIR"), &e);
	int rc;

	if (sp == NULL)
		return fail("verify", &e);
	rc = ops_verify(sp, c->json, stdout, &r, &e);
	spool_close(sp);
	if (rc < 0)
		return fail("verify", &e);
	return rc > 0 ? EXIT_CHECK : EXIT_OK;
}

static int cmd_gc(struct config *cfg, const struct cli *c)
{
	struct gc_opts o = {.older_than_ms = 7LL * 86400 * 1000,
	                    .retention_ms = config_int(cfg, "RETENTION"),
	                    .drop_quarantined = c->drop_quarantined,
	                    .json = c->json};
	struct gc_result r;
	struct ierr e = {0};
	struct spool *sp;
	int rc;

	if (c->older_than && ops_parse_duration(c->older_than, &o.older_than_ms) != 0)
		return usage_error("gc", "--older-than: not a duration: \"%s\"", c->older_than);
	sp = ops_open(config_str(cfg, "SPOOL_DIR"), &e);
	if (sp == NULL)
		return fail("gc", &e);
	rc = ops_gc(sp, &o, stdout, &r, &e);
	spool_close(sp);
	return rc < 0 ? fail("gc", &e) : EXIT_OK;
}

/* `ingesta reset --table T [--to VALUE]` (README "Incremental extraction"). */
static int cmd_reset(struct config *cfg, const struct cli *c)
{
	struct watermark_reset_result r;
	struct ierr e = {0};
	const char *source = collector_source_name(cfg);
	struct spool *sp;
	int rc;

	if (c->ntables != 1)
		return usage_error("reset", "%s",
		                   "give one --table T (and --to VALUE to move its "
		                   "watermark instead of clearing it)");
	if (c->to != NULL && *c->to == '\0')
		return usage_error("reset", "%s", "--to: empty value");
	if (source == NULL)
		return usage_error("reset", "%s",
		                   "DB_TYPE: not set (the source whose table to reset)");
	sp = ops_open(config_str(cfg, "SPOOL_DIR"), &e);
	if (sp == NULL)
		return fail("reset", &e);
	rc = spool_watermark_reset(sp, source, c->tables[0], c->to, &r, &e);
	spool_close(sp);
	if (rc != 0)
		return fail("reset", &e);
	if (r.refused) {
		fprintf(stderr, "ingesta reset: refused: %s\n", r.why);
		return EXIT_CHECK;
	}
	if (c->to)
		printf("%s %s: watermark %s -> %s (the next run reads after it)\n", source,
		       c->tables[0], r.before[0] ? r.before : "(none)", c->to);
	else if (r.had)
		printf("%s %s: watermark %s cleared (the next run is a snapshot)\n", source,
		       c->tables[0], r.before[0] ? r.before : "(none)");
	else
		printf("%s %s: no watermark (the next run is a snapshot)\n", source, c->tables[0]);
	return EXIT_OK;
}

static int cmd_extract(struct config *cfg, const struct cli *c)
{
	struct ierr e = {0};

	c->tables[c->ntables] == NULL ? (void)0 : (void)0;
	if (collector_extract(cfg, c->ntables ? c->tables : NULL, stdout, &e) != 0)
		return fail("extract", &e);
	return EXIT_OK;
}

/* The source whose tables the catalog describes: SOURCE_NAME, else the
 * canonical DB_TYPE (as the collector names its runs). */
static const char *catalog_source(const struct config *cfg)
{
	const char *s = config_str(cfg, "SOURCE_NAME");
	const char *t = config_str(cfg, "DB_TYPE");

	if (*s)
		return s;
	if (strcmp(t, "mariadb") == 0)
		return "mysql";
	if (strcmp(t, "postgres") == 0)
		return "postgresql";
	if (strcmp(t, "mongo") == 0)
		return "mongodb";
	return t;
}

static int catalog_apply_cmd(struct config *cfg, struct catalog_model *m)
{
	struct ierr e = {0};
	struct catalog_ctx *ctx = catalog_ctx_new(cfg, &e);
	int rc;

	if (ctx == NULL)
		return fail("catalog", &e);
	rc = catalog_apply(ctx, m, stdout, &e);
	catalog_ctx_free(ctx);
	if (rc != 0) {
		fail("catalog", &e);
		return e.code == IERR_CONFIG ? EXIT_USAGE : EXIT_UPLOAD;
	}
	return EXIT_OK;
}

static int cmd_catalog(struct config *cfg, const struct cli *c)
{
	const char *source = catalog_source(cfg);
	const char *tmpl = config_str(cfg, "S3_KEY_TEMPLATE");
	bool part = config_bool(cfg, "ENABLE_PARTITIONING");
	struct buf head = {0}, out = {0};
	struct catalog_model m;
	struct ierr e = {0};
	struct spool *sp;
	char db[256];
	int n, rc = EXIT_OK;

	if (c->format && strcmp(c->format, "ddl") != 0 && strcmp(c->format, "json") != 0)
		return usage_error("catalog", "--format: \"%s\" is not ddl or json", c->format);
	if (*source == '\0')
		return usage_error("catalog", "%s",
		                   "SOURCE_NAME or DB_TYPE: needed to pick the source's tables");
	if (c->apply && !catalog_enabled(cfg))
		return usage_error("catalog", "%s",
		                   "GLUE_DATABASE: not set (the Glue database --apply writes to)");
	if (catalog_check_template(tmpl, part, source, &head, &e) != 0) {
		buf_free(&head);
		return fail("catalog", &e);
	}
	sp = ops_open(config_str(cfg, "SPOOL_DIR"), &e);
	if (sp == NULL) {
		buf_free(&head);
		return fail("catalog", &e);
	}
	catalog_database_name(cfg, source, db, sizeof(db));
	catalog_model_init(&m, source, db, config_str(cfg, "S3_BUCKET"),
	                   config_str(cfg, "S3_PREFIX"), buf_cstr(&head));
	catalog_model_set_view_catalog(&m, config_str(cfg, "GLUE_VIEW_CATALOG"));
	n = catalog_model_load(&m, sp, *tmpl ? tmpl : NULL, &e);
	spool_close(sp);
	buf_free(&head);
	if (n < 0) {
		catalog_model_free(&m);
		return fail("catalog", &e);
	}
	if (n == 0) {
		fprintf(stderr,
		        "ingesta catalog: no table schema of source \"%s\" recorded in %s yet "
		        "(run `ingesta collect` with this version first)\n",
		        source, config_str(cfg, "SPOOL_DIR"));
		catalog_model_free(&m);
		return EXIT_SPOOL;
	}
	if (c->apply) {
		rc = catalog_apply_cmd(cfg, &m);
	} else {
		if (c->format && strcmp(c->format, "json") == 0)
			catalog_render_json(&m, &out);
		else
			catalog_render_ddl(&m, &out);
		fwrite(out.data, 1, out.len, stdout);
		buf_free(&out);
	}
	if (m.type_changes > 0)
		fprintf(stderr,
		        "ingesta catalog: %d column type change(s) between runs; the first type "
		        "is kept (see the warnings)\n",
		        m.type_changes);
	catalog_model_free(&m);
	return rc;
}

static int cmd_demo(struct cli *c)
{
	char cwd[PATH_MAX], src[PATH_MAX + 32], spool[PATH_MAX + 32], bucket[PATH_MAX + 40];
	char bucket_dir[PATH_MAX + 32];
	const char *sets[8];
	struct config *cfg;
	struct ierr e = {0};
	struct collect_summary sum;
	int64_t failed = 0, t0 = monotonic_ms();
	int n = 0;

	if (getcwd(cwd, sizeof(cwd)) == NULL)
		return EXIT_FAILURE_GENERIC;
	snprintf(src, sizeof(src), "SQLITE_PATH=%s/demo-source.db", cwd);
	snprintf(spool, sizeof(spool), "SPOOL_DIR=%s/demo-spool", cwd);
	snprintf(bucket_dir, sizeof(bucket_dir), "%s/demo-bucket", cwd);
	snprintf(bucket, sizeof(bucket), "S3_BUCKET=file://%s", bucket_dir);
	sets[n++] = "DB_TYPE=sqlite";
	sets[n++] = src;
	sets[n++] = spool;
	sets[n++] = bucket;
	sets[n++] = "SOURCE_NAME=demo-ms1";
	for (int i = 0; i < c->noverrides && n < 7; i++)
		sets[n++] = c->overrides[i];
	sets[n] = NULL;
	cfg = config_parse_text(NULL, "demo", sets, false, &e);
	if (cfg == NULL)
		return fail("demo", &e);
	log_setup(LOG_INFO, false, NULL);
	printf("ingesta demo: SQLite source %s/demo-source.db -> spool %s/demo-spool -> %s\n\n",
	       cwd, cwd, bucket + strlen("S3_BUCKET="));
	if (demo_make_source(src + strlen("SQLITE_PATH="), &e) != 0 ||
	    collector_run(cfg, &sum, &e) != 0) {
		config_free(cfg);
		return fail("demo", &e);
	}
	summary_line(&sum);
	if (uploader_run(cfg, true, &failed, &e) != 0) {
		config_free(cfg);
		return fail("demo", &e);
	}
	printf("\n%s/\n", bucket_dir);
	demo_print_tree(bucket_dir, 1, stdout);
	printf("\n");
	fflush(stdout);
	{
		struct cli sc = {.json = false};

		cmd_status(cfg, &sc);
	}
	printf("\ndemo finished in %.2f s\n", (double)(monotonic_ms() - t0) / 1000.0);
	config_free(cfg);
	return failed ? EXIT_UPLOAD : EXIT_OK;
}

int main(int argc, char **argv)
{
	struct cli c;
	struct config *cfg;
	struct ierr e = {0};
	int rc;

	memset(&c, 0, sizeof(c));
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		fputs(usage_text, argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : EXIT_OK;
	}
	c.command = argv[1];
	if (strcmp(c.command, "version") == 0 || strcmp(c.command, "--version") == 0) {
		printf("ingesta %s\n", INGESTA_VERSION);
		return EXIT_OK;
	}
	if (strcmp(c.command, "help-config") == 0) {
		config_print_reference();
		return EXIT_OK;
	}
	if (parse_args(argc, argv, &c) != 0) {
		fputs(usage_text, stderr);
		return EXIT_USAGE;
	}
	install_signals();
	if (strcmp(c.command, "demo") == 0)
		return cmd_demo(&c);

	cfg = load(&c, &e);
	if (cfg == NULL)
		return fail(c.command, &e);
	if (strcmp(c.command, "collect") == 0)
		rc = cmd_collect(cfg);
	else if (strcmp(c.command, "upload") == 0)
		rc = cmd_upload(cfg, &c);
	else if (strcmp(c.command, "status") == 0)
		rc = cmd_status(cfg, &c);
	else if (strcmp(c.command, "list") == 0)
		rc = cmd_list(cfg, &c);
	else if (strcmp(c.command, "replay") == 0)
		rc = cmd_replay(cfg, &c);
	else if (strcmp(c.command, "verify") == 0)
		rc = cmd_verify(cfg, &c);
	else if (strcmp(c.command, "gc") == 0)
		rc = cmd_gc(cfg, &c);
	else if (strcmp(c.command, "extract") == 0)
		rc = cmd_extract(cfg, &c);
	else if (strcmp(c.command, "catalog") == 0)
		rc = cmd_catalog(cfg, &c);
	else if (strcmp(c.command, "reset") == 0)
		rc = cmd_reset(cfg, &c);
	else {
		fprintf(stderr, "ingesta: unknown command \"%s\"\n\n%s", c.command, usage_text);
		rc = EXIT_USAGE;
	}
	config_free(cfg);
	if (ingesta_stop_requested && rc == EXIT_OK && strcmp(c.command, "collect") != 0)
		rc = EXIT_OK;
	return rc;
}
