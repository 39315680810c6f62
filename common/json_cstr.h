/*
 * json_cstr.h - a C string as a JSON value, for the operator commands' --json
 * output (status, list, verify): NULL is written as null, anything else as a
 * JSON string (invalid UTF-8 replaced by U+FFFD, not counted anywhere).
 */
#ifndef INGESTA_JSON_CSTR_H
#define INGESTA_JSON_CSTR_H

#include "buf.h"

void json_cstr(struct buf *b, const char *s);

#endif
