/* json_reemit_ref.h - json_reemit() as it was, the oracle of the differential
 * tests (json_reemit_ref.c). */
#ifndef INGESTA_JSON_REEMIT_REF_H
#define INGESTA_JSON_REEMIT_REF_H

#include <stddef.h>

#include "buf.h"
#include "err.h"
#include "json.h"

int json_reemit_ref(struct buf *b, const char *s, size_t n, struct lossy *st, struct ierr *e);

#endif
