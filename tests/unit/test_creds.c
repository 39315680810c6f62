/*
 * test_creds.c - the AWS credentials chain: environment, shared files, ECS and
 * IMDSv2, their order, refreshing, and the errors.
 *
 * ECS and IMDS are served by tests/servers/fake_metadata.py, started here with
 * fork/exec on a free loopback port and stopped by PID. meson passes the
 * interpreter and the script as INGESTA_PYTHON3 and INGESTA_FAKE_METADATA
 * (run by hand, "python3" and tests/servers/fake_metadata.py from the source
 * root are used). Every request the server gets is one line of its log, which
 * is how the tests count token, role and credentials requests.
 *
 * HOME is pointed at a temporary directory first, so the developer's own
 * ~/.aws never leaks into a test.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "creds.h"
#include "testlib.h"

/* ---- a fake configuration ------------------------------------------------- */

#define MAX_KEYS 32

struct conf {
	const char *key[MAX_KEYS];
	char *val[MAX_KEYS];
	int n;
	int calls; /* lookups made, to check when the provider reads keys */
};

static const char *conf_lookup(const char *key, void *ctx)
{
	struct conf *c = ctx;

	c->calls++;
	for (int i = 0; i < c->n; i++) {
		if (strcmp(c->key[i], key) == 0)
			return c->val[i];
	}
	return NULL;
}

static void conf_set(struct conf *c, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void conf_set(struct conf *c, const char *key, const char *fmt, ...)
{
	char v[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(v, sizeof(v), fmt, ap);
	va_end(ap);
	for (int i = 0; i < c->n; i++) {
		if (strcmp(c->key[i], key) == 0) {
			free(c->val[i]);
			c->val[i] = strdup(v);
			return;
		}
	}
	if (c->n == MAX_KEYS)
		abort();
	c->key[c->n] = key;
	c->val[c->n++] = strdup(v);
}

static void conf_clear(struct conf *c)
{
	for (int i = 0; i < c->n; i++)
		free(c->val[i]);
	memset(c, 0, sizeof(*c));
}

static char tmpdir[256];

/* A configuration with nothing but IMDS switched off, so no test ever waits
 * on 169.254.169.254. */
static void conf_base(struct conf *c)
{
	conf_clear(c);
	conf_set(c, "AWS_EC2_METADATA_DISABLED", "true");
}

static struct creds_provider *provider(struct conf *c, struct creds_options *extra)
{
	struct creds_options o = {0};
	struct ierr e = {0};
	struct creds_provider *p;

	if (extra != NULL)
		o = *extra;
	o.lookup = conf_lookup;
	o.lookup_ctx = c;
	p = creds_provider_new(&o, &e);
	if (p == NULL)
		fprintf(stderr, "creds_provider_new: %s\n", e.msg);
	return p;
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0) {
		perror(path);
		exit(2);
	}
}

/* ---- the fake metadata server ---------------------------------------------- */

struct server {
	pid_t pid;
	int port;
	char log[300];
	char url[64];
};

static const char *python(void)
{
	const char *p = getenv("INGESTA_PYTHON3");

	return p && *p ? p : "python3";
}

static const char *server_script(void)
{
	const char *s = getenv("INGESTA_FAKE_METADATA");

	return s && *s ? s : "tests/servers/fake_metadata.py";
}

/* Start the server with extra arguments (NULL-terminated); 0 on success. */
static int server_start(struct server *s, const char *tag, ...)
{
	const char *argv[24];
	int argc = 0, fds[2];
	char line[64];
	FILE *f;
	va_list ap;

	memset(s, 0, sizeof(*s));
	snprintf(s->log, sizeof(s->log), "%s/server-%s.log", tmpdir, tag);
	argv[argc++] = python();
	argv[argc++] = server_script();
	argv[argc++] = "--port";
	argv[argc++] = "0";
	argv[argc++] = "--log";
	argv[argc++] = s->log;
	va_start(ap, tag);
	for (const char *a = va_arg(ap, const char *); a != NULL && argc < 23;
	     a = va_arg(ap, const char *))
		argv[argc++] = a;
	va_end(ap);
	argv[argc] = NULL;

	if (pipe(fds) != 0)
		return -1;
	s->pid = fork();
	if (s->pid < 0)
		return -1;
	if (s->pid == 0) {
		dup2(fds[1], STDOUT_FILENO);
		close(fds[0]);
		close(fds[1]);
		execvp(argv[0], (char *const *)argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(fds[1]);
	f = fdopen(fds[0], "r");
	if (f == NULL || fgets(line, sizeof(line), f) == NULL ||
	    sscanf(line, "PORT %d", &s->port) != 1) {
		fprintf(stderr, "fake_metadata.py (%s %s) did not start\n", argv[0], argv[1]);
		if (f != NULL)
			fclose(f);
		kill(s->pid, SIGTERM);
		waitpid(s->pid, NULL, 0);
		s->pid = 0;
		return -1;
	}
	fclose(f);
	snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%d", s->port);
	return 0;
}

static void server_stop(struct server *s)
{
	if (s->pid > 0) {
		kill(s->pid, SIGTERM);
		waitpid(s->pid, NULL, 0);
	}
	s->pid = 0;
}

/* Requests in the server's log whose line starts with `prefix`. */
static int server_count(const struct server *s, const char *prefix)
{
	char line[512];
	int n = 0;
	FILE *f = fopen(s->log, "r");

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, prefix, strlen(prefix)) == 0)
			n++;
	}
	fclose(f);
	return n;
}

#define TOKEN_PUT  "PUT /latest/api/token 200"
#define ROLE_LIST  "GET /latest/meta-data/iam/security-credentials/ 200"
#define ROLE_CREDS "GET /latest/meta-data/iam/security-credentials/ingesta-test-role 200"

/* A loopback port nothing listens on: connections are refused at once. */
static int dead_port(void)
{
	struct server s;
	int port;

	if (server_start(&s, "dead", NULL) != 0)
		return 1;
	port = s.port;
	server_stop(&s);
	return port;
}

/* ---- the tests ------------------------------------------------------------- */

static void from_environment(void)
{
	struct conf c = {0};
	struct creds_provider *p;
	struct aws_creds k;
	struct ierr e = {0};
	char name[128];

	conf_base(&c);
	conf_set(&c, "AWS_ACCESS_KEY_ID", "AKIAENV");
	conf_set(&c, "AWS_SECRET_ACCESS_KEY", "envsecret");
	conf_set(&c, "AWS_SESSION_TOKEN", "envtoken");
	p = provider(&c, NULL);
	CHECK(p != NULL);
	CHECK_STR(creds_source_name(p, name, sizeof(name)), "none");
	/* Keys are read once, at construction. */
	c.calls = 0;
	CHECK(creds_get(p, &k, &e) == 0);
	CHECK(c.calls == 0);
	CHECK_STR(k.access_key, "AKIAENV");
	CHECK_STR(k.secret_key, "envsecret");
	CHECK_STR(k.session_token, "envtoken");
	CHECK(k.expiration == 0);
	CHECK_STR(k.source, "environment");
	CHECK_STR(creds_source_name(p, name, sizeof(name)), "environment");
	aws_creds_free(&k);
	aws_creds_free(&k); /* emptied: harmless */
	creds_provider_free(p);

	/* Without a session token: static long-term keys. */
	conf_set(&c, "AWS_SESSION_TOKEN", "%s", "");
	p = provider(&c, NULL);
	CHECK(creds_get(p, &k, &e) == 0);
	CHECK(k.session_token == NULL);
	aws_creds_free(&k);
	creds_provider_free(p);

	/* A key id without its secret is an error, not a reason to look further. */
	conf_base(&c);
	conf_set(&c, "AWS_ACCESS_KEY_ID", "AKIAENV");
	p = provider(&c, NULL);
	CHECK(creds_get(p, &k, &e) == -1);
	CHECK(e.code == IERR_CONFIG);
	CHECK(strstr(e.msg, "AWS_SECRET_ACCESS_KEY") != NULL);
	CHECK(k.access_key == NULL);
	creds_provider_free(p);
	conf_clear(&c);
}

static const char credentials_text[] =
    "# shared credentials, hand-edited\r\n"
    "[default]\r\n"
    "aws_access_key_id = AKIADEFAULT\r\n"
    "aws_secret_access_key=defaultsecret\r\n"
    "\n"
    "  [ prod ]   \n"
    "; a comment\n"
    "   aws_access_key_id    =   AKIAPROD    ; trailing comment\n"
    "AWS_Secret_Access_Key = prod/secret+with=signs # another\n"
    "aws_session_token = prodtoken\n"
    "s3 =\n"
    "    aws_access_key_id = NESTED-NOT-THIS\n"
    "region = eu-west-1\n"
    "\n"
    "[halfway]\n"
    "aws_access_key_id = AKIAHALF\n"
    "\n"
    "[regiononly]\n"
    "region = us-east-2\n";

static const char config_text[] = "[default]\n"
                                  "region = us-east-1\n"
                                  "[profile   cfgonly ]\n"
                                  "aws_access_key_id = AKIACFG\n"
                                  "aws_secret_access_key = cfgsecret\n"
                                  "[cfgbare]\n" /* not a profile in the config file */
                                  "aws_access_key_id = AKIAWRONG\n"
                                  "aws_secret_access_key = wrong\n";

static void expect_profile(struct conf *c, const char *profile, const char *ak, const char *sk,
                           const char *tok)
{
	struct creds_provider *p;
	struct aws_creds k;
	struct ierr e = {0};
	char want[128];

	if (profile != NULL)
		conf_set(c, "AWS_PROFILE", "%s", profile);
	p = provider(c, NULL);
	CHECK(p != NULL);
	CHECK(creds_get(p, &k, &e) == 0);
	if (e.msg[0])
		fprintf(stderr, "profile %s: %s\n", profile ? profile : "(default)", e.msg);
	CHECK_STR(k.access_key, ak);
	CHECK_STR(k.secret_key, sk);
	if (tok == NULL)
		CHECK(k.session_token == NULL);
	else
		CHECK_STR(k.session_token, tok);
	snprintf(want, sizeof(want), "shared-file:profile %s", profile ? profile : "default");
	CHECK_STR(k.source, want);
	aws_creds_free(&k);
	creds_provider_free(p);
}

static void from_shared_files(void)
{
	struct conf c = {0};
	struct creds_provider *p;
	struct aws_creds k;
	struct ierr e = {0};
	char cred[300], cfg[300], dir[300];

	snprintf(cred, sizeof(cred), "%s/creds.ini", tmpdir);
	snprintf(cfg, sizeof(cfg), "%s/config.ini", tmpdir);
	write_text(cred, credentials_text);
	write_text(cfg, config_text);

	conf_base(&c);
	conf_set(&c, "AWS_SHARED_CREDENTIALS_FILE", "%s", cred);
	conf_set(&c, "AWS_CONFIG_FILE", "%s", cfg);
	expect_profile(&c, NULL, "AKIADEFAULT", "defaultsecret", NULL);
	expect_profile(&c, "prod", "AKIAPROD", "prod/secret+with=signs", "prodtoken");
	expect_profile(&c, "cfgonly", "AKIACFG", "cfgsecret", NULL);

	/* An explicit profile that exists nowhere, or only as "[cfgbare]" in
	 * the config file (which needs "[profile cfgbare]"): an error naming it. */
	conf_set(&c, "AWS_PROFILE", "nosuch");
	p = provider(&c, NULL);
	CHECK(creds_get(p, &k, &e) == -1);
	CHECK(strstr(e.msg, "AWS_PROFILE=nosuch") != NULL);
	creds_provider_free(p);
	conf_set(&c, "AWS_PROFILE", "cfgbare");
	p = provider(&c, NULL);
	CHECK(creds_get(p, &k, &e) == -1);
	CHECK(strstr(e.msg, "cfgbare") != NULL);
	creds_provider_free(p);

	/* A key id without its secret; a profile without keys. */
	conf_set(&c, "AWS_PROFILE", "halfway");
	p = provider(&c, NULL);
	CHECK(creds_get(p, &k, &e) == -1);
	CHECK(strstr(e.msg, "halfway") != NULL);
	CHECK(strstr(e.msg, "aws_secret_access_key") != NULL);
	CHECK(strstr(e.msg, "AKIAHALF") == NULL);
	creds_provider_free(p);
	conf_set(&c, "AWS_PROFILE", "regiononly");
	p = provider(&c, NULL);
	CHECK(creds_get(p, &k, &e) == -1);
	CHECK(strstr(e.msg, "regiononly") != NULL);
	creds_provider_free(p);

	/* Default locations under HOME, and "~/" in a path key. */
	snprintf(dir, sizeof(dir), "%s/.aws", tmpdir);
	mkdir(dir, 0700);
	snprintf(cred, sizeof(cred), "%s/.aws/credentials", tmpdir);
	write_text(cred, "[default]\naws_access_key_id=AKIAHOME\naws_secret_access_key=home\n");
	conf_base(&c);
	expect_profile(&c, NULL, "AKIAHOME", "home", NULL);
	snprintf(cred, sizeof(cred), "%s/tilde.ini", tmpdir);
	write_text(cred, "[t]\naws_access_key_id=AKIATILDE\naws_secret_access_key=tilde\n");
	conf_set(&c, "AWS_SHARED_CREDENTIALS_FILE", "~/tilde.ini");
	expect_profile(&c, "t", "AKIATILDE", "tilde", NULL);
	unlink(cred);
	snprintf(cred, sizeof(cred), "%s/.aws/credentials", tmpdir);
	unlink(cred);
	conf_clear(&c);
}

static void order_of_sources(const struct server *s)
{
	struct conf c = {0};
	struct creds_provider *p;
	struct aws_creds k;
	struct ierr e = {0};
	char cred[300];

	snprintf(cred, sizeof(cred), "%s/order.ini", tmpdir);
	write_text(cred, "[default]\naws_access_key_id=AKIAFILE\naws_secret_access_key=file\n");

	/* Everything configured: the environment wins. */
	conf_clear(&c);
	conf_set(&c, "AWS_ACCESS_KEY_ID", "AKIAENV");
	conf_set(&c, "AWS_SECRET_ACCESS_KEY", "env");
	conf_set(&c, "AWS_SHARED_CREDENTIALS_FILE", "%s", cred);
	conf_set(&c, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "%s/ecs/creds", s->url);
	conf_set(&c, "AWS_EC2_METADATA_SERVICE_ENDPOINT", "%s", s->url);
	p = provider(&c, NULL);
	CHECK(creds_get(p, &k, &e) == 0);
	CHECK_STR(k.source, "environment");
	aws_creds_free(&k);
	creds_provider_free(p);

	/* Then the files, */
	conf_set(&c, "AWS_ACCESS_KEY_ID", "%s", "");
	conf_set(&c, "AWS_SECRET_ACCESS_KEY", "%s", "");
	p = provider(&c, NULL);
	CHECK(creds_get(p, &k, &e) == 0);
	CHECK_STR(k.source, "shared-file:profile default");
	CHECK_STR(k.access_key, "AKIAFILE");
	aws_creds_free(&k);
	creds_provider_free(p);

	/* then ECS, */
	unlink(cred);
	p = provider(&c, NULL);
	CHECK(creds_get(p, &k, &e) == 0);
	CHECK_STR(k.source, "ecs");
	CHECK(strncmp(k.access_key, "ASIAFAKE", 8) == 0);
	aws_creds_free(&k);
	creds_provider_free(p);

	/* then IMDS. */
	conf_set(&c, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "%s", "");
	p = provider(&c, NULL);
	CHECK(creds_get(p, &k, &e) == 0);
	CHECK_STR(k.source, "imds:ingesta-test-role");
	aws_creds_free(&k);
	creds_provider_free(p);
	conf_clear(&c);
}

static void from_ecs(void)
{
	struct server s;
	struct conf c = {0};
	struct creds_provider *p;
	struct creds_options o = {0};
	struct aws_creds k;
	struct ierr e = {0};
	char tokfile[300], base[64];

	if (server_start(&s, "ecs", "--ecs-token", "Bearer s3cr3t-ecs-token", NULL) != 0) {
		CHECK(!"fake metadata server started");
		return;
	}
	conf_base(&c);
	conf_set(&c, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "%s/ecs/v2/credentials/abc", s.url);
	conf_set(&c, "AWS_CONTAINER_AUTHORIZATION_TOKEN", "Bearer s3cr3t-ecs-token");
	p = provider(&c, NULL);
	CHECK(creds_get(p, &k, &e) == 0);
	CHECK_STR(k.source, "ecs");
	CHECK_STR(k.access_key, "ASIAFAKE00000001");
	CHECK(k.secret_key != NULL && strncmp(k.secret_key, "fakeSecret00000001/", 19) == 0);
	CHECK(k.session_token != NULL && strncmp(k.session_token, "fakeToken00000001+", 18) == 0);
	CHECK(k.expiration > time(NULL) + 3000 && k.expiration <= time(NULL) + 3600);
	aws_creds_free(&k);
	/* Cached: a second call asks nobody. */
	CHECK(creds_get(p, &k, &e) == 0);
	CHECK_STR(k.access_key, "ASIAFAKE00000001");
	CHECK(server_count(&s, "GET /ecs/") == 1);
	aws_creds_free(&k);
	creds_provider_free(p);

	/* The token file wins over the token, and is what is sent. */
	snprintf(tokfile, sizeof(tokfile), "%s/ecs-token", tmpdir);
	write_text(tokfile, "Bearer s3cr3t-ecs-token\n");
	conf_set(&c, "AWS_CONTAINER_AUTHORIZATION_TOKEN", "wrong");
	conf_set(&c, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "%s", tokfile);
	p = provider(&c, NULL);
	CHECK(creds_get(p, &k, &e) == 0);
	aws_creds_free(&k);
	creds_provider_free(p);

	/* A refused token: a configured source failing is an error, and the
	 * message names the endpoint but neither the token nor the URI path. */
	write_text(tokfile, "Bearer wrong-token\n");
	p = provider(&c, NULL);
	CHECK(creds_get(p, &k, &e) == -1);
	CHECK(strstr(e.msg, "401") != NULL);
	CHECK(strstr(e.msg, "127.0.0.1") != NULL);
	CHECK(strstr(e.msg, "wrong-token") == NULL);
	CHECK(strstr(e.msg, "/v2/credentials/abc") == NULL);
	creds_provider_free(p);

	/* RELATIVE_URI, with the agent's address replaced for the test. */
	conf_base(&c);
	conf_set(&c, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/ecs/v2/credentials/rel");
	conf_set(&c, "AWS_CONTAINER_AUTHORIZATION_TOKEN", "Bearer s3cr3t-ecs-token");
	snprintf(base, sizeof(base), "%s", s.url);
	o.ecs_relative_base = base;
	p = provider(&c, &o);
	CHECK(creds_get(p, &k, &e) == 0);
	CHECK_STR(k.source, "ecs");
	aws_creds_free(&k);
	creds_provider_free(p);
	CHECK(server_count(&s, "GET /ecs/v2/credentials/rel 200") == 1);

	/* Plain http to anything but loopback or the agent is refused at once. */
	conf_base(&c);
	conf_set(&c, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://metadata.example.com/creds");
	CHECK(creds_provider_new(&(struct creds_options){.lookup = conf_lookup, .lookup_ctx = &c},
	                         &e) == NULL);
	CHECK(strstr(e.msg, "AWS_CONTAINER_CREDENTIALS_FULL_URI") != NULL);
	conf_set(&c, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://[::1]:9/creds");
	p = provider(&c, NULL);
	CHECK(p != NULL);
	creds_provider_free(p);

	server_stop(&s);
	unlink(tokfile);
	conf_clear(&c);
}

static void from_imds(void)
{
	struct server s;
	struct conf c = {0};
	struct creds_provider *p;
	struct aws_creds k;
	struct ierr e = {0};
	char name[128];

	if (server_start(&s, "imds", NULL) != 0) {
		CHECK(!"fake metadata server started");
		return;
	}
	conf_clear(&c);
	conf_set(&c, "AWS_EC2_METADATA_SERVICE_ENDPOINT", "%s/", s.url); /* trailing '/' ok */
	p = provider(&c, NULL);
	CHECK(creds_get(p, &k, &e) == 0);
	if (e.msg[0])
		fprintf(stderr, "imds: %s\n", e.msg);
	CHECK_STR(k.source, "imds:ingesta-test-role");
	CHECK_STR(creds_source_name(p, name, sizeof(name)), "imds:ingesta-test-role");
	CHECK_STR(k.access_key, "ASIAFAKE00000001");
	CHECK(k.session_token != NULL);
	CHECK(k.expiration > time(NULL) + 3000);
	aws_creds_free(&k);
	/* The IMDSv2 flow, once: token, role name, role credentials; nothing
	 * was asked without a token (the server would have said 401). */
	CHECK(server_count(&s, TOKEN_PUT) == 1);
	CHECK(server_count(&s, ROLE_LIST) == 1);
	CHECK(server_count(&s, ROLE_CREDS) == 1);
	CHECK(server_count(&s, "GET /latest/meta-data/iam/security-credentials/ 401") == 0);
	CHECK(creds_get(p, &k, &e) == 0);
	CHECK(server_count(&s, ROLE_CREDS) == 1);
	aws_creds_free(&k);
	creds_provider_free(p);

	/* Disabled: not one request. */
	conf_set(&c, "AWS_EC2_METADATA_DISABLED", "TRUE");
	p = provider(&c, NULL);
	CHECK(creds_get(p, &k, &e) == -1);
	CHECK(strstr(e.msg, "imds (disabled by AWS_EC2_METADATA_DISABLED)") != NULL);
	CHECK(server_count(&s, TOKEN_PUT) == 1);
	creds_provider_free(p);
	conf_set(&c, "AWS_EC2_METADATA_DISABLED", "yes");
	CHECK(creds_provider_new(&(struct creds_options){.lookup = conf_lookup, .lookup_ctx = &c},
	                         &e) == NULL);
	CHECK(strstr(e.msg, "AWS_EC2_METADATA_DISABLED") != NULL);
	server_stop(&s);
	conf_clear(&c);
}

static void imds_v1_only_if_allowed(void)
{
	struct server s;
	struct conf c = {0};
	struct creds_provider *p;
	struct creds_options o = {0};
	struct aws_creds k;
	struct ierr e = {0};

	if (server_start(&s, "v1only", "--mode", "v1only", NULL) != 0) {
		CHECK(!"fake metadata server started");
		return;
	}
	conf_clear(&c);
	conf_set(&c, "AWS_EC2_METADATA_SERVICE_ENDPOINT", "%s", s.url);
	p = provider(&c, NULL);
	CHECK(creds_get(p, &k, &e) == -1);
	CHECK(strstr(e.msg, "IMDSv1 fallback is off") != NULL);
	CHECK(strstr(e.msg, "AWS_EC2_METADATA_V1_FALLBACK") != NULL);
	CHECK(server_count(&s, "GET ") == 0);
	creds_provider_free(p);

	o.imds_v1_fallback = true;
	p = provider(&c, &o);
	CHECK(creds_get(p, &k, &e) == 0);
	CHECK_STR(k.source, "imds:ingesta-test-role (IMDSv1)");
	aws_creds_free(&k);
	creds_provider_free(p);

	conf_set(&c, "AWS_EC2_METADATA_V1_FALLBACK", "true");
	p = provider(&c, NULL);
	CHECK(creds_get(p, &k, &e) == 0);
	CHECK_STR(k.source, "imds:ingesta-test-role (IMDSv1)");
	aws_creds_free(&k);
	creds_provider_free(p);
	server_stop(&s);

	/* A v2 server refuses tokenless requests: the fallback is only taken
	 * when the token request itself is refused. */
	if (server_start(&s, "v2strict", NULL) != 0) {
		CHECK(!"fake metadata server started");
		return;
	}
	conf_set(&c, "AWS_EC2_METADATA_SERVICE_ENDPOINT", "%s", s.url);
	p = provider(&c, NULL);
	CHECK(creds_get(p, &k, &e) == 0);
	CHECK_STR(k.source, "imds:ingesta-test-role");
	aws_creds_free(&k);
	creds_provider_free(p);
	server_stop(&s);
	conf_clear(&c);
}

struct getter {
	struct creds_provider *p;
	int rc;
	char ak[64];
};

static void *get_in_thread(void *arg)
{
	struct getter *g = arg;
	struct aws_creds k;
	struct ierr e = {0};

	g->rc = creds_get(g->p, &k, &e);
	if (g->rc == 0)
		snprintf(g->ak, sizeof(g->ak), "%s", k.access_key);
	aws_creds_free(&k);
	return NULL;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/*
 * Credentials issued for 12 s, refresh margin 6 s: refreshed about 6 s after
 * issue. Timeline (each step has about 4.5 s of slack against the one-second
 * granularity of Expiration and a loaded machine; with 6 s and 3 s the step
 * at t=9 failed once in a loaded CI run):
 *   t=0    A from IMDS and from ECS; an immediate second get still gives A;
 *   t=7.5  B (rotated), fetched once although 8 threads ask at the same time;
 *          the server is then stopped;
 *   t=15   refresh due but the server is gone: B (valid until 19.5) still, so B;
 *   t=20.6 B has expired and cannot be refreshed: an error.
 */
static void refresh_before_expiry(void)
{
	struct server s;
	struct conf ci = {0}, ce = {0};
	struct creds_options o = {.refresh_margin_s = 6};
	struct creds_provider *imds, *ecs;
	struct aws_creds k;
	struct ierr e = {0};
	struct getter g[8];
	pthread_t t[8];
	char a_imds[64], a_ecs[64];

	if (server_start(&s, "refresh", "--expire-seconds", "12", NULL) != 0) {
		CHECK(!"fake metadata server started");
		return;
	}
	conf_clear(&ci);
	conf_set(&ci, "AWS_EC2_METADATA_SERVICE_ENDPOINT", "%s", s.url);
	conf_base(&ce);
	conf_set(&ce, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "%s/ecs/creds", s.url);
	imds = provider(&ci, &o);
	ecs = provider(&ce, &o);

	CHECK(creds_get(imds, &k, &e) == 0);
	snprintf(a_imds, sizeof(a_imds), "%s", k.access_key);
	CHECK(k.expiration > 0);
	aws_creds_free(&k);
	CHECK(creds_get(ecs, &k, &e) == 0);
	snprintf(a_ecs, sizeof(a_ecs), "%s", k.access_key);
	aws_creds_free(&k);
	CHECK(strcmp(a_imds, a_ecs) != 0); /* every issue rotates */

	CHECK(creds_get(imds, &k, &e) == 0);
	CHECK_STR(k.access_key, a_imds);
	aws_creds_free(&k);
	CHECK(server_count(&s, ROLE_CREDS) == 1);

	sleep_ms(7500);
	for (int i = 0; i < 8; i++) {
		g[i].p = imds;
		pthread_create(&t[i], NULL, get_in_thread, &g[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		CHECK(g[i].rc == 0);
		CHECK(strcmp(g[i].ak, a_imds) != 0);
		CHECK_STR(g[i].ak, g[0].ak);
	}
	CHECK(server_count(&s, ROLE_CREDS) == 2);
	CHECK(server_count(&s, TOKEN_PUT) == 2);
	CHECK(creds_get(ecs, &k, &e) == 0);
	CHECK(strcmp(k.access_key, a_ecs) != 0);
	aws_creds_free(&k);
	CHECK(server_count(&s, "GET /ecs/creds 200") == 2);

	server_stop(&s);
	sleep_ms(7500);
	CHECK(creds_get(imds, &k, &e) == 0);
	CHECK_STR(k.access_key, g[0].ak);
	aws_creds_free(&k);

	sleep_ms(5600);
	CHECK(creds_get(imds, &k, &e) == -1);
	CHECK(strstr(e.msg, "expired") != NULL);
	CHECK(k.access_key == NULL);

	creds_provider_free(imds);
	creds_provider_free(ecs);
	conf_clear(&ci);
	conf_clear(&ce);
}

static void nothing_found(void)
{
	struct conf c = {0};
	struct creds_provider *p;
	struct aws_creds k;
	struct ierr e = {0};
	char name[128];

	conf_clear(&c);
	conf_set(&c, "AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:%d", dead_port());
	conf_set(&c, "AWS_SESSION_TOKEN", "lonely-session-token"); /* no key id: ignored */
	p = provider(&c, NULL);
	CHECK(creds_get(p, &k, &e) == -1);
	CHECK(e.code == IERR_CONFIG);
	fprintf(stderr, "(expected) %s\n", e.msg);
	CHECK(strncmp(e.msg, "no AWS credentials found; tried: ", 33) == 0);
	CHECK(strstr(e.msg, "environment (AWS_ACCESS_KEY_ID not set)") != NULL);
	CHECK(strstr(e.msg, "shared files (") != NULL);
	CHECK(strstr(e.msg, "/.aws/credentials not found") != NULL);
	CHECK(strstr(e.msg, "/.aws/config not found") != NULL);
	CHECK(strstr(e.msg, "ecs (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI/FULL_URI not set)") !=
	      NULL);
	CHECK(strstr(e.msg, "imds: PUT http://127.0.0.1:") != NULL);
	CHECK(strstr(e.msg, "lonely") == NULL);
	CHECK(k.access_key == NULL);
	CHECK_STR(creds_source_name(p, name, sizeof(name)), "none");
	creds_provider_free(p);

	/* Bad keys fail at construction, naming the key. */
	conf_clear(&c);
	conf_set(&c, "AWS_EC2_METADATA_SERVICE_ENDPOINT", "169.254.169.254");
	CHECK(creds_provider_new(&(struct creds_options){.lookup = conf_lookup, .lookup_ctx = &c},
	                         &e) == NULL);
	CHECK(strstr(e.msg, "AWS_EC2_METADATA_SERVICE_ENDPOINT") != NULL);
	conf_clear(&c);
	conf_set(&c, "AWS_METADATA_SERVICE_NUM_ATTEMPTS", "many");
	CHECK(creds_provider_new(&(struct creds_options){.lookup = conf_lookup, .lookup_ctx = &c},
	                         &e) == NULL);
	CHECK(strstr(e.msg, "AWS_METADATA_SERVICE_NUM_ATTEMPTS") != NULL);
	conf_clear(&c);
	CHECK(creds_provider_new(&(struct creds_options){0}, &e) == NULL);
}

int main(void)
{
	struct server probe;

	snprintf(tmpdir, sizeof(tmpdir), "%s/ingesta-test-creds-XXXXXX",
	         getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	setenv("HOME", tmpdir, 1);
	signal(SIGPIPE, SIG_IGN);

	from_environment();
	from_shared_files();
	nothing_found();
	if (server_start(&probe, "order", NULL) != 0) {
		CHECK(!"fake metadata server started (INGESTA_PYTHON3, INGESTA_FAKE_METADATA)");
	} else {
		order_of_sources(&probe);
		server_stop(&probe);
		from_ecs();
		from_imds();
		imds_v1_only_if_allowed();
		refresh_before_expiry();
	}

	{
		char cmd[400];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tmpdir);
	}
	return test_done();
}
