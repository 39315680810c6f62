/*
 * creds.c - the AWS credentials chain and its refreshing cache (see creds.h).
 *
 * Shape: creds_provider_new() snapshots every key it may need (so the lookup
 * callback is never called from uploader threads); the first creds_get() walks
 * the chain env -> shared files -> ECS -> IMDS and pins the first source that
 * answers; later calls hand out copies of the cached credentials and, for the
 * temporary ones, fetch new ones from the pinned source when the refresh time
 * has come. Everything after the snapshot happens under one mutex.
 *
 * Each chain step returns FOUND, SKIPPED (not configured here; a line is added
 * to the "tried" list) or an error (configured but broken: stop, as the SDKs
 * do, rather than silently using some other identity).
 *
 * This file owns the chain, the provider object, caching/refresh and locking,
 * and the environment step. The shared files are parsed in creds_file.c, the
 * ECS and IMDS endpoints are spoken to in creds_http.c (creds_internal.h is
 * what the three share); those sources never see the provider or its lock.
 */
#include "creds.h"

#include <errno.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "buf.h"
#include "config.h"
#include "creds_internal.h"
#include "log.h"

#define ECS_DEFAULT_BASE    "http://169.254.170.2"
#define IMDS_DEFAULT_V4     "http://169.254.169.254"
#define IMDS_DEFAULT_V6     "http://[fd00:ec2::254]"
#define REFRESH_RETRY_DELAY 5 /* s between failed refreshes of still-valid creds */

enum source { SRC_NONE, SRC_ENV, SRC_FILE, SRC_ECS, SRC_IMDS };

struct creds_provider {
	pthread_mutex_t mu;

	/* snapshot of the configuration, read once */
	char *env_access_key, *env_secret_key, *env_session_token;
	char *credentials_file, *config_file; /* NULL: unknown HOME */
	char *profile;
	bool profile_explicit;
	bool imds_disabled;
	struct creds_endpoints ep;
	int margin;
	bool curl_ready;

	/* state, under mu */
	enum source source;
	struct aws_creds cur;
	time_t refresh_at; /* 0: never */
	char name[128];
};

/* ---- small helpers --------------------------------------------------------- */

void creds_free_secret(char *s)
{
	if (s == NULL)
		return;
	OPENSSL_cleanse(s, strlen(s));
	free(s);
}

void aws_creds_free(struct aws_creds *c)
{
	creds_free_secret(c->access_key);
	creds_free_secret(c->secret_key);
	creds_free_secret(c->session_token);
	memset(c, 0, sizeof(*c));
}

static void creds_copy(struct aws_creds *dst, const struct aws_creds *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->access_key = xstrdup(src->access_key);
	dst->secret_key = xstrdup(src->secret_key);
	dst->session_token = src->session_token ? xstrdup(src->session_token) : NULL;
	dst->expiration = src->expiration;
	memcpy(dst->source, src->source, sizeof(dst->source));
}

/* Trim blanks (and CR/LF) at both ends, in place. */
char *creds_trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
		end--;
	*end = '\0';
	return s;
}

/* Credential material must fit on one header line. */
bool creds_one_line(const char *s)
{
	return s != NULL && *s != '\0' && strpbrk(s, "\r\n") == NULL;
}

static time_t refresh_time(time_t now, time_t exp, int margin)
{
	time_t at, half;

	if (exp == 0)
		return 0;
	at = exp - margin;
	half = now + (exp - now) / 2;
	return at < half ? half : at;
}

/* ---- 1. environment -------------------------------------------------------- */

static enum step try_env(struct creds_provider *p, struct aws_creds *c, struct buf *tried,
                         struct ierr *e)
{
	if (p->env_access_key == NULL && p->env_secret_key == NULL) {
		buf_puts(tried, "environment (AWS_ACCESS_KEY_ID not set)");
		return STEP_SKIPPED;
	}
	if (p->env_access_key == NULL || p->env_secret_key == NULL) {
		ierr_set(e, IERR_CONFIG, "AWS credentials: %s is set but %s is not",
		         p->env_access_key ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
		         p->env_access_key ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
		return STEP_ERROR;
	}
	if (!creds_one_line(p->env_access_key) || !creds_one_line(p->env_secret_key) ||
	    (p->env_session_token && !creds_one_line(p->env_session_token))) {
		ierr_set(e, IERR_CONFIG,
		         "AWS credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or "
		         "AWS_SESSION_TOKEN contains a line break");
		return STEP_ERROR;
	}
	memset(c, 0, sizeof(*c));
	c->access_key = xstrdup(p->env_access_key);
	c->secret_key = xstrdup(p->env_secret_key);
	c->session_token = p->env_session_token ? xstrdup(p->env_session_token) : NULL;
	snprintf(p->name, sizeof(p->name), "environment");
	return STEP_FOUND;
}

/* ---- 2. shared files (creds_file.c) --------------------------------------- */

static enum step try_files(struct creds_provider *p, struct aws_creds *c, struct buf *tried,
                           struct ierr *e)
{
	enum step st = creds_from_files(p->credentials_file, p->config_file, p->profile,
	                                p->profile_explicit, c, tried, e);

	if (st == STEP_FOUND)
		snprintf(p->name, sizeof(p->name), "shared-file:profile %s", p->profile);
	return st;
}

/* ---- 3. ECS container credentials (creds_http.c) --------------------------- */

static enum step try_ecs(struct creds_provider *p, struct aws_creds *c, struct buf *tried,
                         struct ierr *e)
{
	if (p->ep.ecs_relative_uri == NULL && p->ep.ecs_full_uri == NULL) {
		buf_puts(tried, "ecs (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI/FULL_URI not set)");
		return STEP_SKIPPED;
	}
	if (creds_fetch_ecs(&p->ep, c, e) < 0)
		return STEP_ERROR;
	snprintf(p->name, sizeof(p->name), "ecs");
	return STEP_FOUND;
}

/* ---- 4. EC2 instance metadata (creds_http.c) ------------------------------- */

static enum step try_imds(struct creds_provider *p, struct aws_creds *c, struct buf *tried,
                          struct ierr *e)
{
	struct ierr sub = {0};

	(void)e; /* IMDS failures are reported in the "tried" list instead */
	if (p->imds_disabled) {
		buf_puts(tried, "imds (disabled by AWS_EC2_METADATA_DISABLED)");
		return STEP_SKIPPED;
	}
	if (creds_fetch_imds(&p->ep, c, &sub) < 0) {
		/* The normal outcome off EC2: report it with the others. */
		const char *m = sub.msg;

		if (strncmp(m, "AWS credentials: ", 17) == 0)
			m += 17;
		buf_printf(tried, "%s", m);
		return STEP_SKIPPED;
	}
	snprintf(p->name, sizeof(p->name), "%s", c->source);
	return STEP_FOUND;
}

/* ---- the chain and the cache ----------------------------------------------- */

static int resolve(struct creds_provider *p, struct ierr *e)
{
	enum step (*const steps[])(struct creds_provider *, struct aws_creds *, struct buf *,
	                           struct ierr *) = {try_env, try_files, try_ecs, try_imds};
	static const enum source sources[] = {SRC_ENV, SRC_FILE, SRC_ECS, SRC_IMDS};
	struct buf tried = {0};
	struct aws_creds c;
	time_t now = time(NULL);

	memset(&c, 0, sizeof(c));
	for (size_t i = 0; i < sizeof(sources) / sizeof(sources[0]); i++) {
		enum step st;

		if (tried.len > 0)
			buf_puts(&tried, "; ");
		st = steps[i](p, &c, &tried, e);
		if (st == STEP_ERROR) {
			buf_free(&tried);
			return -1;
		}
		if (st == STEP_FOUND) {
			snprintf(c.source, sizeof(c.source), "%s", p->name);
			p->source = sources[i];
			p->cur = c;
			p->refresh_at = refresh_time(now, c.expiration, p->margin);
			buf_free(&tried);
			log_event(LOG_INFO, "aws credentials found", "source", p->name, NULL);
			return 0;
		}
	}
	ierr_set(e, IERR_CONFIG, "no AWS credentials found; tried: %s", buf_cstr(&tried));
	buf_free(&tried);
	return -1;
}

static int refresh(struct creds_provider *p, time_t now, struct ierr *e)
{
	struct aws_creds c;
	struct ierr sub = {0};
	int rc;

	memset(&c, 0, sizeof(c));
	rc = p->source == SRC_ECS ? creds_fetch_ecs(&p->ep, &c, &sub)
	                          : creds_fetch_imds(&p->ep, &c, &sub);
	if (rc == 0) {
		if (p->source == SRC_IMDS)
			snprintf(p->name, sizeof(p->name), "%s", c.source);
		snprintf(c.source, sizeof(c.source), "%s", p->name);
		aws_creds_free(&p->cur);
		p->cur = c;
		p->refresh_at = refresh_time(now, c.expiration, p->margin);
		log_event(LOG_DEBUG, "aws credentials refreshed", "source", p->name, NULL);
		return 0;
	}
	if (p->cur.expiration > now) {
		/* Still valid: keep them, try again soon. */
		p->refresh_at = now + REFRESH_RETRY_DELAY;
		log_event(LOG_WARNING, "aws credentials refresh failed; using the current ones",
		          "source", p->name, "error", sub.msg, NULL);
		return 0;
	}
	if (e != NULL)
		*e = sub;
	return ierr_prefix(e, "AWS credentials from %s expired and could not be refreshed",
	                   p->name);
}

int creds_get(struct creds_provider *p, struct aws_creds *out, struct ierr *e)
{
	time_t now = time(NULL);
	int rc = 0;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&p->mu);
	if (p->source == SRC_NONE)
		rc = resolve(p, e);
	else if ((p->refresh_at != 0 && now >= p->refresh_at) ||
	         (p->cur.expiration != 0 && now >= p->cur.expiration))
		rc = refresh(p, now, e);
	if (rc == 0)
		creds_copy(out, &p->cur);
	pthread_mutex_unlock(&p->mu);
	return rc;
}

const char *creds_source_name(struct creds_provider *p, char *buf, size_t size)
{
	pthread_mutex_lock(&p->mu);
	snprintf(buf, size, "%s", p->source == SRC_NONE ? "none" : p->name);
	pthread_mutex_unlock(&p->mu);
	return buf;
}

/* ---- construction ---------------------------------------------------------- */

static char *look(const struct creds_options *o, const char *key)
{
	const char *v = o->lookup(key, o->lookup_ctx);

	return (v != NULL && *v != '\0') ? xstrdup(v) : NULL;
}

static int look_bool(const struct creds_options *o, const char *key, bool *out, struct ierr *e)
{
	const char *v = o->lookup(key, o->lookup_ctx);

	if (v == NULL || *v == '\0')
		return 0;
	if (strcasecmp(v, "true") == 0)
		*out = true;
	else if (strcasecmp(v, "false") == 0)
		*out = false;
	else
		return ierr_set(e, IERR_CONFIG, "%s: expected true or false, got \"%.40s\"", key,
		                v);
	return 0;
}

static int look_number(const struct creds_options *o, const char *key, double min, double max,
                       double *out, struct ierr *e)
{
	const char *v = o->lookup(key, o->lookup_ctx);
	char *end;
	double d;

	if (v == NULL || *v == '\0')
		return 0;
	errno = 0;
	d = strtod(v, &end);
	if (errno != 0 || end == v || *end != '\0' || d < min || d > max)
		return ierr_set(e, IERR_CONFIG, "%s: not a number between %g and %g: \"%.40s\"",
		                key, min, max, v);
	*out = d;
	return 1;
}

static const char *home_dir(void)
{
	const char *h = getenv("HOME");
	struct passwd *pw;

	if (h != NULL && *h != '\0')
		return h;
	pw = getpwuid(getuid()); /* only at construction, before threads */
	return pw != NULL ? pw->pw_dir : NULL;
}

/* The key's value with a leading "~/" expanded, or HOME/dflt when unset. */
static char *file_path(const struct creds_options *o, const char *key, const char *dflt)
{
	const char *v = o->lookup(key, o->lookup_ctx);
	const char *home = home_dir();
	struct buf b = {0};

	if (v != NULL && *v != '\0' && !(v[0] == '~' && (v[1] == '/' || v[1] == '\0')))
		return xstrdup(v);
	if (home == NULL)
		return NULL;
	if (v != NULL && *v != '\0')
		buf_printf(&b, "%s%s", home, v + 1);
	else
		buf_printf(&b, "%s/%s", home, dflt);
	return (char *)buf_cstr(&b);
}

static int check_endpoint(const char *key, const char *url, struct ierr *e)
{
	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
		return ierr_set(e, IERR_CONFIG, "%s: \"%.100s\" is not an http:// or https:// URL",
		                key, url);
	if (strpbrk(url, " \t\r\n?#") != NULL)
		return ierr_set(e, IERR_CONFIG, "%s: \"%.100s\" is not a base URL", key, url);
	return 0;
}

static int snapshot(struct creds_provider *p, const struct creds_options *o, struct ierr *e)
{
	char *mode;
	double d;
	int rc;

	p->env_access_key = look(o, "AWS_ACCESS_KEY_ID");
	p->env_secret_key = look(o, "AWS_SECRET_ACCESS_KEY");
	p->env_session_token = look(o, "AWS_SESSION_TOKEN");
	p->credentials_file = file_path(o, "AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials");
	p->config_file = file_path(o, "AWS_CONFIG_FILE", ".aws/config");
	p->profile = look(o, "AWS_PROFILE");
	p->profile_explicit = p->profile != NULL;
	if (p->profile == NULL)
		p->profile = xstrdup("default");
	if (strpbrk(p->profile, "[]\r\n") != NULL)
		return ierr_set(e, IERR_CONFIG, "AWS_PROFILE: \"%.60s\" is not a profile name",
		                p->profile);

	p->ep.ecs_relative_uri = look(o, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	p->ep.ecs_full_uri = look(o, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
	p->ep.ecs_token = look(o, "AWS_CONTAINER_AUTHORIZATION_TOKEN");
	p->ep.ecs_token_file = look(o, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	p->ep.ecs_base = xstrdup(o->ecs_relative_base ? o->ecs_relative_base : ECS_DEFAULT_BASE);
	if (p->ep.ecs_relative_uri != NULL && p->ep.ecs_relative_uri[0] != '/')
		return ierr_set(e, IERR_CONFIG,
		                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: must start with '/'");
	if (p->ep.ecs_relative_uri == NULL && p->ep.ecs_full_uri != NULL &&
	    creds_check_full_uri(p->ep.ecs_full_uri, e) < 0)
		return -1;

	if (look_bool(o, "AWS_EC2_METADATA_DISABLED", &p->imds_disabled, e) < 0)
		return -1;
	p->ep.imds_v1 = o->imds_v1_fallback;
	if (look_bool(o, "AWS_EC2_METADATA_V1_FALLBACK", &p->ep.imds_v1, e) < 0)
		return -1;
	if (o->imds_v1_fallback)
		p->ep.imds_v1 = true;
	p->ep.imds_endpoint = look(o, "AWS_EC2_METADATA_SERVICE_ENDPOINT");
	mode = look(o, "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
	if (mode != NULL && strcasecmp(mode, "IPv4") != 0 && strcasecmp(mode, "IPv6") != 0) {
		ierr_set(
		    e, IERR_CONFIG,
		    "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE: expected IPv4 or IPv6, got \"%.20s\"",
		    mode);
		free(mode);
		return -1;
	}
	if (p->ep.imds_endpoint == NULL)
		p->ep.imds_endpoint =
		    xstrdup(mode != NULL && strcasecmp(mode, "IPv6") == 0 ? IMDS_DEFAULT_V6
		                                                          : IMDS_DEFAULT_V4);
	free(mode);
	if (check_endpoint("AWS_EC2_METADATA_SERVICE_ENDPOINT", p->ep.imds_endpoint, e) < 0)
		return -1;
	for (size_t n = strlen(p->ep.imds_endpoint); n > 0 && p->ep.imds_endpoint[n - 1] == '/';
	     n--)
		p->ep.imds_endpoint[n - 1] = '\0';

	p->ep.connect_timeout_ms = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 1000;
	p->ep.timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 2000;
	p->ep.retries = o->retries < 0 ? 0 : (o->retries == 0 ? 2 : o->retries);
	p->margin = o->refresh_margin_s > 0 ? o->refresh_margin_s : 300;
	rc = look_number(o, "AWS_METADATA_SERVICE_TIMEOUT", 0.1, 60, &d, e);
	if (rc < 0)
		return -1;
	if (rc > 0)
		p->ep.timeout_ms = (long)(d * 1000);
	rc = look_number(o, "AWS_METADATA_SERVICE_NUM_ATTEMPTS", 1, 10, &d, e);
	if (rc < 0)
		return -1;
	if (rc > 0)
		p->ep.retries = (int)d - 1;
	if (p->ep.connect_timeout_ms > p->ep.timeout_ms)
		p->ep.connect_timeout_ms = p->ep.timeout_ms;
	return 0;
}

const char *creds_config_lookup(const char *key, void *ctx)
{
	static const char *const declared[] = {
	    "AWS_ACCESS_KEY_ID",
	    "AWS_SECRET_ACCESS_KEY",
	    "AWS_SESSION_TOKEN",
	    "AWS_PROFILE",
	    "AWS_SHARED_CREDENTIALS_FILE",
	    "AWS_CONFIG_FILE",
	    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
	    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
	    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
	    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
	    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
	    "AWS_EC2_METADATA_DISABLED",
	    "AWS_EC2_METADATA_V1_FALLBACK",
	    NULL,
	};
	const struct config *cfg = ctx;

	for (int i = 0; declared[i]; i++) {
		if (strcmp(declared[i], key) == 0)
			return config_str(cfg, key);
	}
	return getenv(key);
}

struct creds_provider *creds_provider_new(const struct creds_options *o, struct ierr *e)
{
	struct creds_provider *p;

	if (o == NULL || o->lookup == NULL) {
		ierr_set(e, IERR_INTERNAL, "creds_provider_new: a lookup function is required");
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		ierr_set(e, IERR_INTERNAL, "creds_provider_new: out of memory");
		return NULL;
	}
	pthread_mutex_init(&p->mu, NULL);
	if (snapshot(p, o, e) < 0) {
		creds_provider_free(p);
		return NULL;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		ierr_set(e, IERR_INTERNAL, "creds_provider_new: libcurl initialisation failed");
		creds_provider_free(p);
		return NULL;
	}
	p->curl_ready = true;
	return p;
}

void creds_provider_free(struct creds_provider *p)
{
	if (p == NULL)
		return;
	creds_free_secret(p->env_access_key);
	creds_free_secret(p->env_secret_key);
	creds_free_secret(p->env_session_token);
	free(p->credentials_file);
	free(p->config_file);
	free(p->profile);
	creds_free_secret(p->ep.ecs_relative_uri);
	creds_free_secret(p->ep.ecs_full_uri);
	creds_free_secret(p->ep.ecs_token);
	free(p->ep.ecs_token_file);
	free(p->ep.ecs_base);
	free(p->ep.imds_endpoint);
	aws_creds_free(&p->cur);
	if (p->curl_ready)
		curl_global_cleanup();
	pthread_mutex_destroy(&p->mu);
	free(p);
}
