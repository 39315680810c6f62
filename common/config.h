/*
 * config.h - KEY=VALUE configuration: file, then environment, then flags.
 *
 * Every key ingesta knows is declared once in the table in config.c with its
 * type, default, whether it is a secret, and a one-line doc; README.md's
 * configuration reference is printed from that table (`ingesta help-config`).
 * Loading validates every value: a bad value fails with a message naming the key
 * and the problem (never the value of a secret). Unknown keys in the file warn.
 *
 * The file syntax is what systemd EnvironmentFile= and docker --env-file accept:
 * `KEY=VALUE`, optional `export ` prefix, `#` comment lines, blank lines, values
 * in single quotes (literal) or double quotes (\" \\ \n \t \$ escapes), and
 * unquoted values with trailing whitespace and ` #comment` stripped.
 *
 * A loaded config is immutable and may be read from any thread.
 */
#ifndef INGESTA_CONFIG_H
#define INGESTA_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"

struct config;

/* Load `path` (NULL: no file), then the environment, then `overrides`
 * ("KEY=VALUE" strings from flags, NULL-terminated, may be NULL).
 * Warnings (unknown keys) are logged. Returns NULL with *e set on error. */
struct config *config_load(const char *path, const char *const *overrides, struct ierr *e);

/* Parse file text only (no environment); for tests and `config check`. */
struct config *config_parse_text(const char *text, const char *origin, const char *const *overrides,
                                 bool use_env, struct ierr *e);

void config_free(struct config *c);

/* The value of a known key (its default when unset; "" when no default).
 * Asking for an undeclared key is a programming error and aborts. */
const char *config_str(const struct config *c, const char *key);
/* Integer and size keys (K, M, G suffixes, powers of 1024) as their value;
 * duration keys (ms, s, m, h, d suffixes; a plain number is seconds) in
 * MILLISECONDS. Already validated at load. */
int64_t config_int(const struct config *c, const char *key);
bool config_bool(const struct config *c, const char *key);
/* true when the key was given (file, environment or flag), not defaulted. */
bool config_is_set(const struct config *c, const char *key);
/* Number of warnings emitted while loading (unknown keys, deprecated aliases). */
int config_warnings(const struct config *c);

/* Every secret value of the config, for scrubbing (NULL-terminated, owned by c). */
const char *const *config_secrets(const struct config *c);

/* Print the key reference as a Markdown table (README "Configuration"). */
void config_print_reference(void);

#endif
