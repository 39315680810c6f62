/*
 * creds_file.c - step 2 of the credentials chain: the shared files
 * ~/.aws/credentials and ~/.aws/config (see creds.h for the lookup rules).
 *
 * Contract: creds_from_files() reads each file whole (at most 1 MiB), parses
 * it for the one profile asked for, wipes the text and keeps only that
 * profile's aws_access_key_id, aws_secret_access_key and aws_session_token.
 * A profile that has a section but no keys is "not here" (the chain goes on)
 * unless AWS_PROFILE named it explicitly; half a key pair is an error. Paths
 * and profile names appear in messages, key values never.
 *
 * The INI dialect is the SDKs': [NAME] sections in the credentials file,
 * [profile NAME] or [default] in the config file; sections may repeat (later
 * values win); '#' and ';' start comment lines and, after a blank, inline
 * comments; keys are case-insensitive; an indented line after a key with an
 * empty value is a nested setting and is ignored.
 *
 * Limits: only static keys. role_arn, sso_*, credential_process and
 * source_profile profiles are not supported (they are reported as having no
 * aws_access_key_id). No file locking: a file rewritten while read may give a
 * torn profile, as with the SDKs.
 */
#include "creds_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#define MAX_FILE (1024 * 1024)

struct profile_keys {
	bool section_found;
	char *access_key, *secret_key, *session_token;
};

static void profile_keys_free(struct profile_keys *k)
{
	creds_free_secret(k->access_key);
	creds_free_secret(k->secret_key);
	creds_free_secret(k->session_token);
	memset(k, 0, sizeof(*k));
}

/* Does the section header text (between the brackets, trimmed) name our
 * profile? The config file prefixes "profile " except for "default". */
static bool section_matches(char *inner, const char *profile, bool config_style)
{
	if (!config_style)
		return strcmp(inner, profile) == 0;
	if (strcmp(inner, "default") == 0)
		return strcmp(profile, "default") == 0;
	if (strncmp(inner, "profile", 7) == 0 && (inner[7] == ' ' || inner[7] == '\t'))
		return strcmp(creds_trim(inner + 8), profile) == 0;
	return false;
}

/* Strip a " #" or " ;" comment from a value. Secrets are base64 and contain
 * neither, and a '#' glued to the text is kept. */
static void strip_inline_comment(char *v)
{
	for (char *q = v; *q; q++) {
		if ((*q == '#' || *q == ';') && q > v && (q[-1] == ' ' || q[-1] == '\t')) {
			*q = '\0';
			return;
		}
	}
}

/* Parse INI text (modified in place) for the keys of one profile. Sections
 * may repeat; later values win. An indented line after a key with an empty
 * value is a nested setting ("s3 =\n  max_concurrent_requests = 2") and is
 * ignored. */
static void ini_profile(char *text, const char *profile, bool config_style, struct profile_keys *k)
{
	bool in_section = false, nested = false;
	char *save = NULL;

	for (char *line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		bool indented = (*line == ' ' || *line == '\t');
		char *s = creds_trim(line), *eq, *key, *val, **slot = NULL;

		if (*s == '\0' || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			char *close = strrchr(s, ']');

			nested = false;
			in_section = false;
			if (close == NULL)
				continue;
			*close = '\0';
			in_section = section_matches(creds_trim(s + 1), profile, config_style);
			if (in_section)
				k->section_found = true;
			continue;
		}
		if (nested && indented)
			continue;
		nested = false;
		eq = strchr(s, '=');
		if (!in_section || eq == NULL)
			continue;
		*eq = '\0';
		key = creds_trim(s);
		val = eq + 1;
		strip_inline_comment(val);
		val = creds_trim(val);
		if (*val == '\0') {
			nested = true;
			continue;
		}
		if (strcasecmp(key, "aws_access_key_id") == 0)
			slot = &k->access_key;
		else if (strcasecmp(key, "aws_secret_access_key") == 0)
			slot = &k->secret_key;
		else if (strcasecmp(key, "aws_session_token") == 0)
			slot = &k->session_token;
		if (slot != NULL) {
			creds_free_secret(*slot);
			*slot = xstrdup(val);
		}
	}
}

/* Read a whole file. 1: read; 0: does not exist; -1: error (*e set). */
int creds_read_file(const char *path, const char *key, struct buf *out, struct ierr *e)
{
	FILE *f = fopen(path, "r");
	char chunk[4096];
	size_t n;

	if (f == NULL) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		return ierr_errno(e, errno, "AWS credentials: %s %s", key, path);
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (out->len + n > MAX_FILE) {
			fclose(f);
			return ierr_set(e, IERR_CONFIG,
			                "AWS credentials: %s %s: larger than %d bytes", key, path,
			                MAX_FILE);
		}
		buf_append(out, chunk, n);
	}
	if (ferror(f)) {
		int err = errno;

		fclose(f);
		return ierr_errno(e, err, "AWS credentials: %s %s", key, path);
	}
	fclose(f);
	buf_cstr(out);
	return 1;
}

/* Look for the profile in one file. 1: section found (keys in *k), 0: not. */
static int scan_file(const char *path, const char *key, bool config_style, const char *profile,
                     struct profile_keys *k, struct buf *tried, struct ierr *e)
{
	struct buf text = {0};
	int rc;

	if (path == NULL) {
		buf_printf(tried, "%s: HOME unknown", key);
		return 0;
	}
	rc = creds_read_file(path, key, &text, e);
	if (rc < 0) {
		buf_free(&text);
		return -1;
	}
	if (rc == 0) {
		buf_printf(tried, "%s not found", path);
		buf_free(&text);
		return 0;
	}
	ini_profile(text.data, profile, config_style, k);
	OPENSSL_cleanse(text.data, text.len);
	buf_free(&text);
	if (!k->section_found) {
		buf_printf(tried, "%s has no profile %s", path, profile);
		return 0;
	}
	if (k->access_key == NULL && k->secret_key == NULL) {
		buf_printf(tried, "%s: profile %s has no aws_access_key_id", path, profile);
		return 0;
	}
	return 1;
}

enum step creds_from_files(const char *credentials_file, const char *config_file,
                           const char *profile, bool profile_explicit, struct aws_creds *c,
                           struct buf *tried, struct ierr *e)
{
	static const char *const keys[] = {"AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE"};
	const char *paths[] = {credentials_file, config_file};
	struct profile_keys k;
	bool any_section = false;

	buf_puts(tried, "shared files (");
	for (int i = 0; i < 2; i++) {
		int rc;

		memset(&k, 0, sizeof(k));
		if (i > 0)
			buf_puts(tried, ", ");
		rc = scan_file(paths[i], keys[i], i == 1, profile, &k, tried, e);
		if (rc < 0) {
			profile_keys_free(&k);
			return STEP_ERROR;
		}
		any_section = any_section || k.section_found;
		if (rc == 0) {
			profile_keys_free(&k);
			continue;
		}
		if (k.access_key == NULL || k.secret_key == NULL) {
			ierr_set(e, IERR_CONFIG, "AWS credentials: %s: profile %s has %s but no %s",
			         paths[i], profile,
			         k.access_key ? "aws_access_key_id" : "aws_secret_access_key",
			         k.access_key ? "aws_secret_access_key" : "aws_access_key_id");
			profile_keys_free(&k);
			return STEP_ERROR;
		}
		if (!creds_one_line(k.access_key) || !creds_one_line(k.secret_key)) {
			ierr_set(e, IERR_CONFIG, "AWS credentials: %s: profile %s: bad key value",
			         paths[i], profile);
			profile_keys_free(&k);
			return STEP_ERROR;
		}
		memset(c, 0, sizeof(*c));
		c->access_key = k.access_key;
		c->secret_key = k.secret_key;
		c->session_token = k.session_token;
		return STEP_FOUND;
	}
	buf_puts(tried, ")");
	if (profile_explicit) {
		if (!any_section)
			ierr_set(e, IERR_CONFIG,
			         "AWS credentials: AWS_PROFILE=%s: no such profile in %s or %s",
			         profile, paths[0] ? paths[0] : "(no HOME)",
			         paths[1] ? paths[1] : "(no HOME)");
		else
			ierr_set(
			    e, IERR_CONFIG,
			    "AWS credentials: AWS_PROFILE=%s has no aws_access_key_id "
			    "(role_arn, sso and credential_process profiles are not supported)",
			    profile);
		return STEP_ERROR;
	}
	return STEP_SKIPPED;
}
