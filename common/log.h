/*
 * log.h - one line per event, logfmt (default) or JSON (LOG_FORMAT=json).
 *
 *   log_event(LOG_INFO, "segment sealed", "table", "users", "rows", "10", NULL);
 *   -> ts=2025-10-05T14:30:00.123Z level=info msg="segment sealed" table=users rows=10
 *
 * Fields are key/value string pairs ended by NULL; values are quoted when
 * needed. Every registered secret (log_add_secret) is replaced by "[REDACTED]"
 * wherever it appears in a message or value, as a last line of defence: code
 * should never pass secrets in the first place. Logging is thread-safe and goes
 * to stderr (or LOG_FILE, reopened on SIGHUP via log_reopen()).
 */
#ifndef INGESTA_LOG_H
#define INGESTA_LOG_H

#include <stdbool.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARNING, LOG_ERROR, LOG_CRITICAL };

/* level name as in the original (DEBUG, INFO, WARNING, ERROR, CRITICAL; any
 * case; WARN accepted). Returns -1 when unknown. */
int log_level_parse(const char *name);
void log_setup(enum log_level level, bool json, const char *path);
void log_add_secret(const char *secret);
int log_reopen(void);
bool log_enabled(enum log_level level);

void log_event(enum log_level level, const char *msg, ...) __attribute__((sentinel));

/* Replace every registered secret in s (in place, may shorten). */
void log_scrub(char *s, unsigned long size);

#endif
