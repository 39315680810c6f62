/*
 * bson_json.h - one BSON document -> one compact JSON object (TYPES.md).
 *
 * The MongoDB driver's row normalizer. It walks the document with bson_iter_t
 * and writes every value through the json.h writers; libbson's own JSON output
 * is never used (it is Extended JSON, not the byte-exact form TYPES.md fixes).
 *
 * Nesting is walked with an explicit stack, not recursion, so a hostile or
 * corrupt document cannot overflow the C stack; documents nested deeper than
 * BSON_JSON_MAX_DEPTH fail with an error naming the top-level field.
 */
#ifndef INGESTA_BSON_JSON_H
#define INGESTA_BSON_JSON_H

#include <bson/bson.h>

#include "buf.h"
#include "err.h"
#include "json.h"
#include "writer.h"

/* MongoDB itself stores at most 100 levels; this only bounds what a corrupt or
 * foreign document can make us allocate (one iterator per level). */
#define BSON_JSON_MAX_DEPTH 10000

/* Append `doc` to b as one JSON object ("{...}", no newline): fields in
 * document order, _id included, values per TYPES.md with o's decimal and binary
 * modes. Lossy conversions are counted in *st. Does not block; allocates only
 * when nesting exceeds a small on-stack frame array.
 *
 * Returns 0, or -1 with *e set (code IERR_SOURCE) when the document is corrupt
 * BSON or nests too deep; b is then left as it was on entry. */
int bson_to_json(struct buf *b, const bson_t *doc, const struct norm_opts *o, struct lossy *st,
                 struct ierr *e);

#endif
