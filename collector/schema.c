/*
 * schema.c - table schemas, their canonical JSON, and inference from
 * documents (contract in schema.h).
 */
#include "schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "util.h"

static void *grow(void *p, size_t *cap, size_t need, size_t size)
{
	size_t n = *cap ? *cap : 8;

	if (need <= *cap)
		return p;
	while (n < need)
		n *= 2;
	p = xrealloc(p, n * size);
	*cap = n;
	return p;
}

void table_schema_add_column(struct table_schema *s, const char *name, size_t n, const char *type,
                             bool nullable)
{
	struct column_info *c;

	s->cols = grow(s->cols, &s->capcols, s->ncols + 1, sizeof(*s->cols));
	c = &s->cols[s->ncols++];
	c->name = xstrndup(name, n);
	c->type = xstrdup(type);
	c->nullable = nullable;
}

void table_schema_add_pk(struct table_schema *s, const char *name)
{
	s->pk = grow(s->pk, &s->cappk, s->npk + 1, sizeof(*s->pk));
	s->pk[s->npk++] = xstrdup(name);
}

void table_schema_free(struct table_schema *s)
{
	for (size_t i = 0; i < s->ncols; i++) {
		free(s->cols[i].name);
		free(s->cols[i].type);
	}
	for (size_t i = 0; i < s->npk; i++)
		free(s->pk[i]);
	free(s->cols);
	free(s->pk);
	memset(s, 0, sizeof(*s));
}

static void put_string(struct buf *b, const char *s)
{
	struct lossy ignored = {0};

	json_string(b, s, strlen(s), &ignored);
}

void table_schema_json(const struct table_schema *s, struct buf *b)
{
	buf_puts(b, "{\"columns\":[");
	for (size_t i = 0; i < s->ncols; i++) {
		if (i > 0)
			buf_putc(b, ',');
		buf_puts(b, "{\"name\":");
		put_string(b, s->cols[i].name);
		buf_puts(b, ",\"type\":");
		put_string(b, s->cols[i].type);
		buf_puts(b, ",\"nullable\":");
		json_bool(b, s->cols[i].nullable);
		buf_putc(b, '}');
	}
	buf_puts(b, "],\"primary_key\":[");
	for (size_t i = 0; i < s->npk; i++) {
		if (i > 0)
			buf_putc(b, ',');
		put_string(b, s->pk[i]);
	}
	buf_puts(b, "],\"inferred\":");
	json_bool(b, s->inferred);
	buf_putc(b, '}');
}

/* ------------------------------------------------------------ inference */

static const char *const type_names[IT_COUNT] = {
    [IT_NULL] = "null",           [IT_DOUBLE] = "double",
    [IT_STRING] = "string",       [IT_OBJECT] = "object",
    [IT_ARRAY] = "array",         [IT_BINARY] = "binary",
    [IT_OBJECTID] = "objectId",   [IT_BOOL] = "bool",
    [IT_DATE] = "date",           [IT_REGEX] = "regex",
    [IT_DBPOINTER] = "dbPointer", [IT_JAVASCRIPT] = "javascript",
    [IT_SYMBOL] = "symbol",       [IT_JAVASCRIPT_WITH_SCOPE] = "javascriptWithScope",
    [IT_INT32] = "int32",         [IT_TIMESTAMP] = "timestamp",
    [IT_INT64] = "int64",         [IT_DECIMAL128] = "decimal128",
    [IT_MINKEY] = "minKey",       [IT_MAXKEY] = "maxKey",
};

const char *schema_infer_type_name(enum infer_type t)
{
	return (unsigned)t < IT_COUNT ? type_names[t] : "string";
}

struct infer_field {
	char *name;
	size_t len;
	uint32_t hash;
	uint32_t types;    /* bit per non-null enum infer_type seen */
	bool seen_null;    /* null or undefined in some document */
	uint64_t present;  /* documents that have the field */
	uint64_t last_doc; /* the document that last counted it (duplicate keys) */
};

#define BIT(t) (1u << (t))

/* The merge of every type seen (order-independent, see schema.h). */
static enum infer_type merged_type(uint32_t types)
{
	const uint32_t ints = BIT(IT_INT32) | BIT(IT_INT64);
	const uint32_t numbers = ints | BIT(IT_DOUBLE);

	if (types == 0)
		return IT_NULL;
	if ((types & (types - 1)) == 0) {
		for (int t = 0; t < IT_COUNT; t++) {
			if (types == BIT(t))
				return (enum infer_type)t;
		}
	}
	if ((types & ~ints) == 0)
		return IT_INT64;
	if ((types & ~numbers) == 0)
		return IT_DOUBLE;
	return IT_STRING;
}

static uint32_t hash_name(const char *s, size_t n)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	return h;
}

static void rehash(struct schema_infer *inf, size_t nslots)
{
	uint32_t *slots = xcalloc(nslots, sizeof(*slots));

	for (size_t i = 0; i < inf->nfields; i++) {
		size_t j = inf->fields[i].hash & (nslots - 1);

		while (slots[j] != 0)
			j = (j + 1) & (nslots - 1);
		slots[j] = (uint32_t)i + 1;
	}
	free(inf->slots);
	inf->slots = slots;
	inf->nslots = nslots;
}

void schema_infer_doc(struct schema_infer *inf)
{
	inf->docs++;
}

void schema_infer_field(struct schema_infer *inf, const char *name, size_t n, enum infer_type t)
{
	uint32_t h = hash_name(name, n);
	struct infer_field *f = NULL;
	size_t j;

	if (inf->nslots == 0)
		rehash(inf, 64);
	for (j = h & (inf->nslots - 1); inf->slots[j] != 0; j = (j + 1) & (inf->nslots - 1)) {
		struct infer_field *c = &inf->fields[inf->slots[j] - 1];

		if (c->hash == h && c->len == n && memcmp(c->name, name, n) == 0) {
			f = c;
			break;
		}
	}
	if (f == NULL) {
		if (inf->nfields >= SCHEMA_INFER_MAX_FIELDS) {
			inf->dropped_fields++;
			return;
		}
		inf->fields =
		    grow(inf->fields, &inf->capfields, inf->nfields + 1, sizeof(*inf->fields));
		f = &inf->fields[inf->nfields++];
		memset(f, 0, sizeof(*f));
		f->name = xstrndup(name, n);
		f->len = n;
		f->hash = h;
		inf->slots[j] = (uint32_t)inf->nfields;
		if (2 * inf->nfields > inf->nslots)
			rehash(inf, 2 * inf->nslots);
	}
	if (f->last_doc != inf->docs) {
		f->last_doc = inf->docs;
		f->present++;
	}
	if (t == IT_NULL)
		f->seen_null = true;
	else
		f->types |= BIT((unsigned)t < IT_COUNT ? t : IT_STRING);
}

void schema_infer_result(const struct schema_infer *inf, struct table_schema *out)
{
	bool have_id = false;

	out->inferred = true;
	for (size_t i = 0; i < inf->nfields; i++) {
		const struct infer_field *f = &inf->fields[i];

		table_schema_add_column(out, f->name, f->len,
		                        schema_infer_type_name(merged_type(f->types)),
		                        f->seen_null || f->present < inf->docs);
		if (f->len == 3 && memcmp(f->name, "_id", 3) == 0)
			have_id = true;
	}
	if (have_id)
		table_schema_add_pk(out, "_id");
}

void schema_infer_free(struct schema_infer *inf)
{
	for (size_t i = 0; i < inf->nfields; i++)
		free(inf->fields[i].name);
	free(inf->fields);
	free(inf->slots);
	memset(inf, 0, sizeof(*inf));
}
