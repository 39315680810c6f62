/*
 * parse.h - the duration and size syntax shared by configuration keys and
 * command-line flags, the one copy in the tree.
 *
 * Both take a non-negative decimal number (it must start with a digit or a
 * dot, so "inf", "nan", "-1" and "" are refused) and a unit. Results that do
 * not fit are refused too, never converted with undefined behaviour. The
 * caller names the key or flag in its message.
 */
#ifndef INGESTA_PARSE_H
#define INGESTA_PARSE_H

#include <stdint.h>

/* "90" (seconds), "500ms", "1.5s", "15m" or "15min", "6h", "7d" ->
 * milliseconds, at most 9e15. Returns 0, or -1 with *ms unchanged. */
int parse_duration(const char *s, int64_t *ms);

/* "123", "100B", "64K", "64KiB", "1.5M", "2MB", "1G", "1T" (binary units, any
 * case) -> bytes, at most 9e18. Returns 0, or -1 with *bytes unchanged. */
int parse_size(const char *s, int64_t *bytes);

#endif
