/*
 * bson_json.c - BSON document -> compact JSON object, per TYPES.md.
 *
 * One pass over the document with bson_iter_t, writing straight into the row
 * buffer through json.h. Containers are entered by pushing an iterator on an
 * explicit stack (32 frames on the C stack, then heap), so depth costs heap,
 * never C stack, and is capped at BSON_JSON_MAX_DEPTH.
 *
 * Type decisions beyond the TYPES.md table, and why:
 *  - binary subtype 4 (UUID) of 16 bytes -> canonical UUID text. Subtype 3
 *    (legacy UUID) stays plain binary: its byte order depends on the driver that
 *    wrote it (Java, C# and Python legacy layouts differ), so any canonical text
 *    would be a guess. A subtype 4 value that is not 16 bytes is plain binary.
 *  - code with scope -> the code as a string, scope dropped: TYPES.md maps code
 *    to a string and the scope has no column-like meaning (deprecated since 4.4).
 *  - date outside years 1..9999 -> still a string (so the column keeps one
 *    type for Glue/Athena), in the ISO 8601 expanded-year form MongoDB's shell
 *    prints (JavaScript toISOString: "+010000-01-01T00:00:00Z", year 0 as
 *    "0000"), with TYPES.md's fraction rule; TYPES.md keeps out-of-range dates
 *    in the server's text form and this is the closest MongoDB has.
 *  - timestamp -> the instant of its seconds (the increment is dropped).
 *  - DBPointer, minKey, maxKey -> relaxed Extended JSON, nested.
 */
#include "bson_json.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct frame {
	bson_iter_t it;
	bool array;
	bool first;
};

#define INLINE_FRAMES 32

#define STRINGIFY_(x) #x
#define STRINGIFY(x)  STRINGIFY_(x)

/* 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z in Unix milliseconds. */
#define DATE_MIN_MS (-62135596800000LL)
#define DATE_MAX_MS (253402300799999LL)

static void write_regex(struct buf *b, const bson_iter_t *it, struct lossy *st)
{
	const char *options = NULL;
	const char *pattern = bson_iter_regex(it, &options);
	struct buf tmp = {0};

	buf_putc(&tmp, '/');
	buf_puts(&tmp, pattern);
	buf_putc(&tmp, '/');
	buf_puts(&tmp, options ? options : "");
	json_string(b, tmp.data, tmp.len, st);
	buf_free(&tmp);
}

static void write_date(struct buf *b, int64_t ms)
{
	int64_t days, rem, year;
	int month, day, msec;

	if (ms >= DATE_MIN_MS && ms <= DATE_MAX_MS) {
		json_instant_usec(b, ms * 1000);
		return;
	}
	days = ms / 86400000;
	rem = ms % 86400000;
	if (rem < 0) {
		rem += 86400000;
		days--;
	}
	civil_from_days(days, &year, &month, &day);
	msec = (int)(rem % 1000);
	rem /= 1000;
	if (year >= 0 && year <= 9999)
		buf_printf(b, "\"%04d", (int)year);
	else
		buf_printf(b, "\"%c%06" PRId64, year < 0 ? '-' : '+', year < 0 ? -year : year);
	buf_printf(b, "-%02d-%02dT%02d:%02d:%02d", month, day, (int)(rem / 3600),
	           (int)(rem / 60 % 60), (int)(rem % 60));
	if (msec != 0)
		buf_printf(b, ".%03d000", msec);
	buf_puts(b, "Z\"");
}

static void write_binary(struct buf *b, const bson_iter_t *it, const struct norm_opts *o,
                         struct lossy *st)
{
	bson_subtype_t subtype;
	uint32_t len = 0;
	const uint8_t *data = NULL;

	bson_iter_binary(it, &subtype, &len, &data);
	if (subtype == BSON_SUBTYPE_UUID && len == 16)
		json_uuid(b, data);
	else
		json_binary(b, data, len, o->binary, st);
}

static void write_dbpointer(struct buf *b, const bson_iter_t *it, struct lossy *st)
{
	uint32_t ns_len = 0;
	const char *ns = NULL;
	const bson_oid_t *oid = NULL;

	bson_iter_dbpointer(it, &ns_len, &ns, &oid);
	buf_puts(b, "{\"$dbPointer\":{\"$ref\":");
	json_string(b, ns, ns_len, st);
	buf_puts(b, ",\"$id\":{\"$oid\":");
	json_hex_string(b, oid->bytes, sizeof(oid->bytes));
	buf_puts(b, "}}}");
}

/* Every non-container value. Returns -1 only for a type libbson let through
 * that BSON does not define (cannot happen with libbson's own iterator). */
static int write_scalar(struct buf *b, const bson_iter_t *it, const struct norm_opts *o,
                        struct lossy *st)
{
	uint32_t len = 0;
	const char *s;

	switch (bson_iter_type(it)) {
	case BSON_TYPE_DOUBLE:
		json_double(b, bson_iter_double(it), st);
		break;
	case BSON_TYPE_UTF8:
		s = bson_iter_utf8(it, &len);
		json_string(b, s, len, st);
		break;
	case BSON_TYPE_BINARY:
		write_binary(b, it, o, st);
		break;
	case BSON_TYPE_UNDEFINED:
	case BSON_TYPE_NULL:
		json_null(b);
		break;
	case BSON_TYPE_OID:
		json_hex_string(b, bson_iter_oid(it)->bytes, 12);
		break;
	case BSON_TYPE_BOOL:
		json_bool(b, bson_iter_bool(it));
		break;
	case BSON_TYPE_DATE_TIME:
		write_date(b, bson_iter_date_time(it));
		break;
	case BSON_TYPE_REGEX:
		write_regex(b, it, st);
		break;
	case BSON_TYPE_DBPOINTER:
		write_dbpointer(b, it, st);
		break;
	case BSON_TYPE_CODE:
		s = bson_iter_code(it, &len);
		json_string(b, s, len, st);
		break;
	case BSON_TYPE_SYMBOL:
		s = bson_iter_symbol(it, &len);
		json_string(b, s, len, st);
		break;
	case BSON_TYPE_CODEWSCOPE: {
		uint32_t scope_len = 0;
		const uint8_t *scope = NULL;

		s = bson_iter_codewscope(it, &len, &scope_len, &scope);
		json_string(b, s, len, st);
		break;
	}
	case BSON_TYPE_INT32:
		json_int64(b, bson_iter_int32(it));
		break;
	case BSON_TYPE_TIMESTAMP: {
		uint32_t t = 0, inc = 0;

		bson_iter_timestamp(it, &t, &inc);
		json_instant_usec(b, (int64_t)t * 1000000);
		break;
	}
	case BSON_TYPE_INT64:
		json_int64(b, bson_iter_int64(it));
		break;
	case BSON_TYPE_DECIMAL128: {
		bson_decimal128_t dec;
		char text[BSON_DECIMAL128_STRING];

		bson_iter_decimal128(it, &dec);
		bson_decimal128_to_string(&dec, text);
		json_decimal(b, text, strlen(text), o->decimal, st);
		break;
	}
	case BSON_TYPE_MAXKEY:
		buf_puts(b, "{\"$maxKey\":1}");
		break;
	case BSON_TYPE_MINKEY:
		buf_puts(b, "{\"$minKey\":1}");
		break;
	case BSON_TYPE_EOD:
	case BSON_TYPE_DOCUMENT:
	case BSON_TYPE_ARRAY:
	default:
		return -1;
	}
	return 0;
}

/* Make room for one more frame; the inline array is copied to the heap once. */
static struct frame *grow(struct frame *stack, struct frame *inline_frames, size_t *cap)
{
	size_t ncap = *cap * 2;
	struct frame *p;

	/* As buf.h: a row we cannot hold we cannot spool either (x* abort). */
	if (stack == inline_frames) {
		p = xmalloc(ncap * sizeof(*p));
		memcpy(p, stack, *cap * sizeof(*p));
	} else {
		p = xrealloc(stack, ncap * sizeof(*p));
	}
	*cap = ncap;
	return p;
}

static int fail(struct buf *b, size_t start, struct ierr *e, const char *top_key, const char *what)
{
	b->len = start;
	if (top_key != NULL)
		return ierr_set(e, IERR_SOURCE, "field \"%.200s\": %s", top_key, what);
	return ierr_set(e, IERR_SOURCE, "%s", what);
}

int bson_to_json(struct buf *b, const bson_t *doc, const struct norm_opts *o, struct lossy *st,
                 struct ierr *e)
{
	struct frame inline_frames[INLINE_FRAMES];
	struct frame *stack = inline_frames;
	size_t cap = INLINE_FRAMES;
	size_t depth = 1;
	size_t start = b->len;
	const char *top_key = NULL;
	int rc = 0;

	if (!bson_iter_init(&stack[0].it, doc))
		return fail(b, start, e, NULL, "corrupt BSON document");
	stack[0].array = false;
	stack[0].first = true;
	buf_putc(b, '{');

	while (depth > 0) {
		struct frame *f = &stack[depth - 1];
		bson_type_t type;

		if (!bson_iter_next(&f->it)) {
			/* err_off is libbson's own corruption marker (bson_iter_visit_all
			 * reads it the same way): 0 at a clean end of document. */
			if (f->it.err_off != 0) {
				rc = fail(b, start, e, top_key,
				          depth == 1 && top_key ? "corrupt BSON after this field"
				                                : "corrupt BSON");
				break;
			}
			buf_putc(b, f->array ? ']' : '}');
			depth--;
			continue;
		}
		if (!f->first)
			buf_putc(b, ',');
		f->first = false;
		if (!f->array) {
			const char *key = bson_iter_key(&f->it);

			json_string(b, key, strlen(key), st);
			buf_putc(b, ':');
		}
		if (depth == 1)
			top_key = bson_iter_key(&f->it);

		type = bson_iter_type(&f->it);
		if (type != BSON_TYPE_DOCUMENT && type != BSON_TYPE_ARRAY) {
			if (write_scalar(b, &f->it, o, st) != 0) {
				rc = fail(b, start, e, top_key, "unsupported BSON type");
				break;
			}
			continue;
		}
		if (depth >= BSON_JSON_MAX_DEPTH) {
			rc = fail(b, start, e, top_key,
			          "nested deeper than " STRINGIFY(BSON_JSON_MAX_DEPTH) " levels");
			break;
		}
		if (depth == cap)
			stack = grow(stack, inline_frames, &cap);
		if (!bson_iter_recurse(&stack[depth - 1].it, &stack[depth].it)) {
			rc = fail(b, start, e, top_key, "corrupt BSON");
			break;
		}
		stack[depth].array = (type == BSON_TYPE_ARRAY);
		stack[depth].first = true;
		buf_putc(b, type == BSON_TYPE_ARRAY ? '[' : '{');
		depth++;
	}

	if (stack != inline_frames)
		free(stack);
	return rc;
}
