/*
 * creds.h - AWS credentials, found the way the AWS SDKs find them.
 *
 * The chain, first source that yields credentials wins:
 *   1. environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN;
 *   2. shared files: AWS_SHARED_CREDENTIALS_FILE (default ~/.aws/credentials,
 *      sections [NAME]) then AWS_CONFIG_FILE (default ~/.aws/config, sections
 *      [profile NAME] or [default]), profile AWS_PROFILE (default "default"),
 *      keys aws_access_key_id, aws_secret_access_key, aws_session_token;
 *   3. ECS container credentials: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI
 *      (http://169.254.170.2<uri>) or AWS_CONTAINER_CREDENTIALS_FULL_URI
 *      (https anywhere; http only to loopback or the ECS/EKS link-local
 *      addresses), with AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (re-read on each
 *      fetch) or AWS_CONTAINER_AUTHORIZATION_TOKEN as the Authorization header;
 *   4. EC2 instance metadata, IMDSv2 (token PUT, then role name, then role
 *      credentials) at AWS_EC2_METADATA_SERVICE_ENDPOINT (default
 *      http://169.254.169.254; AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv6 gives
 *      http://[fd00:ec2::254]), skipped when AWS_EC2_METADATA_DISABLED=true.
 *      IMDSv1 (no token) only when the token request is refused and v1 was
 *      explicitly allowed (options or AWS_EC2_METADATA_V1_FALLBACK=true).
 *
 * A source that is configured but broken is an error, not a reason to try
 * the next one (as in the SDKs): a key id without its secret, an AWS_PROFILE
 * that exists in neither file, an ECS endpoint that fails. When no source
 * yields credentials, the error lists what was tried and why each failed.
 *
 * Once a source has produced credentials the provider sticks to it. Static
 * credentials (environment, files) never change. Temporary ones (ECS, IMDS)
 * are fetched again when less than the refresh margin (default 5 minutes)
 * remains before their Expiration; for credentials issued with less than
 * twice that margin, at half their lifetime. If such a refresh fails while the
 * current credentials are still valid, those are returned (and the refresh
 * is retried a few seconds later); once expired, the failure is returned.
 *
 * Keys are read only through the caller's lookup function, once, in
 * creds_provider_new() (the chain itself never calls getenv, except HOME to
 * expand "~"; creds_config_lookup() below, the callers' lookup, does). Files
 * and endpoints are read lazily by creds_get().
 *
 * Secret values never appear in error messages, in creds_source_name() or in
 * anything this module logs; neither do ECS credential URIs (they are
 * capabilities), only their scheme and host.
 *
 * Thread safety: a provider may be shared by any number of threads;
 * creds_get() serialises on a mutex and may block for network I/O (at most
 * about (1 + retries) * request timeout per endpoint request, with a 1 s
 * connect timeout) while holding it. The caller must have called
 * curl_global_init() (or let this module do it: creds_provider_new() calls it,
 * which is safe with libcurl >= 7.84 only if no other thread is using libcurl
 * at that moment).
 */
#ifndef INGESTA_CREDS_H
#define INGESTA_CREDS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "err.h"

/* One set of credentials, owned by the holder: release with aws_creds_free(). */
struct aws_creds {
	char *access_key;
	char *secret_key;
	char *session_token; /* NULL for static long-term credentials */
	time_t expiration;   /* 0: does not expire */
	char source[128];    /* creds_source_name() at the time these were obtained */
};

/* Wipe and free the strings of *c and empty it; safe on an emptied struct. */
void aws_creds_free(struct aws_creds *c);

/* Return the value of configuration key `key` ("AWS_PROFILE", ...), or NULL
 * when unset; "" counts as unset. The pointer need only stay valid until the
 * next call. Called only from creds_provider_new(). */
typedef const char *(*creds_lookup_fn)(const char *key, void *ctx);

/* The lookup every ingesta client of the chain uses (the S3 target, the Glue
 * client): ctx is a const struct config *. The keys ingesta declares come
 * from the config (file, environment, flags); the few standard AWS variables
 * it does not declare come from the environment. */
const char *creds_config_lookup(const char *key, void *ctx);

struct creds_options {
	creds_lookup_fn lookup; /* required */
	void *lookup_ctx;
	/* Allow IMDSv1 (GETs without a token) when the token PUT is refused
	 * with 404/405 or times out. Also enabled by the key
	 * AWS_EC2_METADATA_V1_FALLBACK=true. Off by default: IMDSv1 is the
	 * SSRF-prone flavour. */
	bool imds_v1_fallback;
	/* Endpoint requests: connect timeout (0: 1000 ms), whole-request
	 * timeout (0: 2000 ms) and retries after a network error or 5xx
	 * (-1: none, 0: 2). AWS_METADATA_SERVICE_TIMEOUT (seconds) and
	 * AWS_METADATA_SERVICE_NUM_ATTEMPTS override the last two. */
	long connect_timeout_ms;
	long timeout_ms;
	int retries;
	/* Refresh temporary credentials this long before they expire (0: 300). */
	int refresh_margin_s;
	/* Base URL for AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (NULL:
	 * "http://169.254.170.2"). For tests; not a configuration key, so a
	 * config file cannot redirect container credentials requests. */
	const char *ecs_relative_base;
};

struct creds_provider;

/*
 * Read the keys through o->lookup and return a provider, or NULL with *e set
 * (IERR_CONFIG naming the key) when a value is unusable: a malformed endpoint
 * URL, a non-boolean AWS_EC2_METADATA_DISABLED, ... Does not block, reads no
 * file and opens no connection. Free with creds_provider_free().
 */
struct creds_provider *creds_provider_new(const struct creds_options *o, struct ierr *e);

void creds_provider_free(struct creds_provider *p);

/*
 * Current credentials into *out (which needs no initialisation; the caller
 * owns the copy and frees it with aws_creds_free()). The first call walks the
 * chain; later calls return the cached credentials, refreshing temporary
 * ones as described above. Returns 0, or -1 with *e set and *out emptied:
 * IERR_CONFIG when no source yields credentials or a source is misconfigured,
 * IERR_TRANSIENT when an endpoint could not be reached or answered 5xx (worth
 * retrying later). May block; see the top of this file.
 */
int creds_get(struct creds_provider *p, struct aws_creds *out, struct ierr *e);

/*
 * Name of the source in use, for logs: "environment",
 * "shared-file:profile NAME", "ecs", "imds:ROLE" ("imds:ROLE (IMDSv1)"),
 * or "none" before the first successful creds_get(). Copied into buf
 * (truncated to size); returns buf.
 */
const char *creds_source_name(struct creds_provider *p, char *buf, size_t size);

#endif
