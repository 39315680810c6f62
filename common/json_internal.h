/*
 * json_internal.h - what json.c and json_float.c share; not for drivers.
 */
#ifndef INGESTA_JSON_INTERNAL_H
#define INGESTA_JSON_INTERNAL_H

#include <stdint.h>

/* Write the decimal digits of v ending just before `end`; returns the first. */
char *json_u64_digits(char *end, uint64_t v);

#endif
