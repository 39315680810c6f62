/*
 * athena_types.c - the type mapping table (see athena_types.h and
 * docs/TYPES.md "Athena types", which lists the same rows).
 *
 * A source type is first parsed into a family name (lowercase, without its
 * arguments: "int(10) unsigned" -> "int" + unsigned, "timestamp(6) without
 * time zone" -> "timestamp without time zone", "numeric(10,2)" -> "numeric"
 * + (10,2), "text[]" -> array), then looked up in the table below, first
 * match wins. A result starting with '@' is computed from the arguments and
 * the settings (decimals, MySQL BIT). To change what a family maps to (the
 * Trino probe decides), edit its row here and the row of docs/TYPES.md; the
 * unit test walks every row.
 */
#include "athena_types.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum match {
	M_EXACT,    /* the family name equals pattern */
	M_CONTAINS, /* the family name contains pattern (SQLite affinity rules) */
	M_ARRAY,    /* any PostgreSQL array (pattern unused) */
	M_ANY,      /* every type: the source's fallback */
};

enum sign { S_ANY, S_SIGNED, S_UNSIGNED };

struct type_rule {
	const char *db; /* canonical db type */
	enum match how;
	const char *pattern; /* lowercase */
	enum sign sign;      /* MySQL UNSIGNED / ZEROFILL */
	const char *athena;  /* the type, or "@decimal", "@numeric", "@bit", "@float" */
};

/* clang-format off */
static const struct type_rule rules[] = {
	/* --- MySQL / MariaDB (COLUMN_TYPE) --- */
	{"mysql", M_EXACT, "tinyint", S_SIGNED, "tinyint"},      /* tinyint(1) = BOOLEAN: 0/1 in the JSON */
	{"mysql", M_EXACT, "tinyint", S_UNSIGNED, "smallint"},
	{"mysql", M_EXACT, "smallint", S_SIGNED, "smallint"},
	{"mysql", M_EXACT, "smallint", S_UNSIGNED, "int"},
	{"mysql", M_EXACT, "mediumint", S_ANY, "int"},
	{"mysql", M_EXACT, "int", S_SIGNED, "int"},
	{"mysql", M_EXACT, "integer", S_SIGNED, "int"},
	{"mysql", M_EXACT, "int", S_UNSIGNED, "bigint"},
	{"mysql", M_EXACT, "integer", S_UNSIGNED, "bigint"},
	{"mysql", M_EXACT, "bigint", S_SIGNED, "bigint"},
	{"mysql", M_EXACT, "bigint", S_UNSIGNED, "decimal(20,0)"},
	{"mysql", M_EXACT, "decimal", S_ANY, "@decimal"},
	{"mysql", M_EXACT, "numeric", S_ANY, "@decimal"},
	{"mysql", M_EXACT, "dec", S_ANY, "@decimal"},
	{"mysql", M_EXACT, "fixed", S_ANY, "@decimal"},
	{"mysql", M_EXACT, "float", S_ANY, "float"},
	{"mysql", M_EXACT, "double", S_ANY, "double"},
	{"mysql", M_EXACT, "double precision", S_ANY, "double"},
	{"mysql", M_EXACT, "real", S_ANY, "double"},
	{"mysql", M_EXACT, "bit", S_ANY, "@bit"},
	{"mysql", M_EXACT, "year", S_ANY, "smallint"},
	{"mysql", M_EXACT, "bool", S_ANY, "tinyint"},
	{"mysql", M_EXACT, "boolean", S_ANY, "tinyint"},
	{"mysql", M_EXACT, "date", S_ANY, "date"},
	{"mysql", M_EXACT, "datetime", S_ANY, "timestamp"},
	{"mysql", M_EXACT, "timestamp", S_ANY, "timestamp"},
	{"mysql", M_ANY, "", S_ANY, "string"}, /* time, char/text, enum, set, binary/blob, json, geometry */

	/* --- PostgreSQL (format_type) --- */
	{"postgresql", M_EXACT, "smallint", S_ANY, "smallint"},
	{"postgresql", M_EXACT, "integer", S_ANY, "int"},
	{"postgresql", M_EXACT, "bigint", S_ANY, "bigint"},
	{"postgresql", M_EXACT, "oid", S_ANY, "bigint"},
	{"postgresql", M_EXACT, "real", S_ANY, "float"},
	{"postgresql", M_EXACT, "double precision", S_ANY, "double"},
	{"postgresql", M_EXACT, "numeric", S_ANY, "@numeric"}, /* numeric(p,s) or unbounded */
	{"postgresql", M_EXACT, "boolean", S_ANY, "boolean"},
	{"postgresql", M_EXACT, "date", S_ANY, "date"},
	{"postgresql", M_EXACT, "timestamp without time zone", S_ANY, "timestamp"},
	{"postgresql", M_EXACT, "timestamp with time zone", S_ANY, "timestamp"},
	{"postgresql", M_ARRAY, "", S_ANY, "string"},
	{"postgresql", M_ANY, "", S_ANY, "string"}, /* time[tz], interval, uuid, json[b], text, bytea, money, inet, ... */

	/* --- SQLite (declared type; values stay as stored) --- */
	{"sqlite", M_EXACT, "date", S_ANY, "date"},
	{"sqlite", M_EXACT, "datetime", S_ANY, "timestamp"},
	{"sqlite", M_EXACT, "timestamp", S_ANY, "timestamp"},
	{"sqlite", M_EXACT, "boolean", S_ANY, "bigint"},
	{"sqlite", M_EXACT, "numeric", S_ANY, "double"},
	{"sqlite", M_EXACT, "decimal", S_ANY, "double"},
	{"sqlite", M_CONTAINS, "int", S_ANY, "bigint"},
	{"sqlite", M_CONTAINS, "char", S_ANY, "string"},
	{"sqlite", M_CONTAINS, "clob", S_ANY, "string"},
	{"sqlite", M_CONTAINS, "text", S_ANY, "string"},
	{"sqlite", M_CONTAINS, "blob", S_ANY, "string"},
	{"sqlite", M_CONTAINS, "real", S_ANY, "double"},
	{"sqlite", M_CONTAINS, "floa", S_ANY, "double"},
	{"sqlite", M_CONTAINS, "doub", S_ANY, "double"},
	{"sqlite", M_ANY, "", S_ANY, "string"}, /* no declared type, other NUMERIC-affinity names */

	/* --- MongoDB (inferred BSON type) --- */
	{"mongodb", M_EXACT, "int32", S_ANY, "int"},
	{"mongodb", M_EXACT, "int", S_ANY, "int"},
	{"mongodb", M_EXACT, "int64", S_ANY, "bigint"},
	{"mongodb", M_EXACT, "long", S_ANY, "bigint"},
	{"mongodb", M_EXACT, "double", S_ANY, "double"},
	{"mongodb", M_EXACT, "decimal128", S_ANY, "@float"},
	{"mongodb", M_EXACT, "decimal", S_ANY, "@float"},
	{"mongodb", M_EXACT, "bool", S_ANY, "boolean"},
	{"mongodb", M_EXACT, "boolean", S_ANY, "boolean"},
	{"mongodb", M_EXACT, "date", S_ANY, "timestamp"},
	{"mongodb", M_EXACT, "timestamp", S_ANY, "timestamp"},
	{"mongodb", M_ANY, "", S_ANY, "string"}, /* string, objectId, object, array, binary, null, mixed */
};
/* clang-format on */

#define NRULES (sizeof(rules) / sizeof(rules[0]))

void athena_settings_default(struct athena_settings *s)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->decimal_mode, sizeof(s->decimal_mode), "exact");
	snprintf(s->binary_mode, sizeof(s->binary_mode), "utf8");
}

static const char *canonical_db(const char *db)
{
	if (db == NULL)
		return "";
	if (strcmp(db, "mariadb") == 0)
		return "mysql";
	if (strcmp(db, "postgres") == 0)
		return "postgresql";
	if (strcmp(db, "mongo") == 0)
		return "mongodb";
	return db;
}

/* What a source type is made of, for the table lookup. */
struct parsed {
	char family[128];
	int nargs;
	long args[2];
	bool is_unsigned;
	bool array;
};

static void parse_args(const char *p, struct parsed *out)
{
	/* p points after '(' */
	while (*p && *p != ')' && out->nargs < 2) {
		char *end;
		long v = strtol(p, &end, 10);

		if (end == p)
			break; /* enum('a','b'): not numeric arguments */
		out->args[out->nargs++] = v;
		p = end;
		while (*p == ' ')
			p++;
		if (*p == ',')
			p++;
		while (*p == ' ')
			p++;
	}
}

/* Lowercase family name with every "(...)" removed and spaces squeezed. */
static void parse_type(const char *t, struct parsed *out)
{
	size_t n = 0;
	int depth = 0;
	bool space = false;

	memset(out, 0, sizeof(*out));
	for (const char *p = t; *p; p++) {
		char c = (char)tolower((unsigned char)*p);

		if (c == '(') {
			if (depth == 0 && out->nargs == 0)
				parse_args(p + 1, out);
			depth++;
			continue;
		}
		if (c == ')') {
			if (depth > 0)
				depth--;
			continue;
		}
		if (depth > 0)
			continue;
		if (c == '[') { /* text[], integer[][] */
			out->array = true;
			break;
		}
		if (c == ' ' || c == '\t') {
			space = n > 0;
			continue;
		}
		if (space && n + 1 < sizeof(out->family))
			out->family[n++] = ' ';
		space = false;
		if (n + 1 < sizeof(out->family))
			out->family[n++] = c;
	}
	out->family[n] = '\0';
	/* MySQL: "int unsigned zerofill" -> "int" + unsigned (ZEROFILL implies it). */
	for (;;) {
		char *sp = strrchr(out->family, ' ');

		if (sp == NULL || (strcmp(sp, " unsigned") != 0 && strcmp(sp, " zerofill") != 0 &&
		                   strcmp(sp, " signed") != 0))
			break;
		if (strcmp(sp, " signed") != 0)
			out->is_unsigned = true;
		*sp = '\0';
	}
}

static bool rule_matches(const struct type_rule *r, const char *db, const struct parsed *p)
{
	if (strcmp(r->db, db) != 0)
		return false;
	if (r->sign == S_SIGNED && p->is_unsigned)
		return false;
	if (r->sign == S_UNSIGNED && !p->is_unsigned)
		return false;
	switch (r->how) {
	case M_EXACT:
		return !p->array && strcmp(p->family, r->pattern) == 0;
	case M_CONTAINS:
		return !p->array && strstr(p->family, r->pattern) != NULL;
	case M_ARRAY:
		return p->array;
	case M_ANY:
		return true;
	}
	return false;
}

/* Exact decimals: decimal(p,s) while Athena can hold p digits, else the
 * JSON form decides (DECIMAL_MODE). unbounded: PostgreSQL numeric without
 * (p,s), whose values may have any number of digits. */
static void decimal_type(const struct parsed *p, const struct athena_settings *s, bool unbounded,
                         char *out, size_t outsz)
{
	long prec = p->nargs >= 1 ? p->args[0] : 10;
	long scale = p->nargs >= 2 ? p->args[1] : 0;

	if (strcmp(s->decimal_mode, "double") == 0)
		snprintf(out, outsz, "double");
	else if (strcmp(s->decimal_mode, "string") == 0 || unbounded || prec < 1 || prec > 38 ||
	         scale < 0 || scale > prec)
		snprintf(out, outsz, "string");
	else
		snprintf(out, outsz, "decimal(%ld,%ld)", prec, scale);
}

const char *athena_type(const char *db_type, const char *source_type, bool nullable,
                        const struct athena_settings *s, char *out, size_t outsz)
{
	struct athena_settings dflt;
	struct parsed p;
	const char *db = canonical_db(db_type);

	(void)nullable; /* Hive columns are always nullable */
	if (s == NULL) {
		athena_settings_default(&dflt);
		s = &dflt;
	}
	parse_type(source_type ? source_type : "", &p);
	for (size_t i = 0; i < NRULES; i++) {
		const char *a = rules[i].athena;

		if (!rule_matches(&rules[i], db, &p))
			continue;
		if (strcmp(a, "@decimal") == 0)
			decimal_type(&p, s, false, out, outsz);
		else if (strcmp(a, "@numeric") == 0)
			decimal_type(&p, s, p.nargs == 0, out, outsz);
		else if (strcmp(a, "@float") == 0) /* Decimal128: 34 digits, any exponent */
			snprintf(out, outsz, "%s",
			         strcmp(s->decimal_mode, "double") == 0 ? "double" : "string");
		else if (strcmp(a, "@bit") == 0) /* BIT(n) is an unsigned n-bit integer */
			snprintf(out, outsz, "%s",
			         p.nargs >= 1 && p.args[0] > 63 ? "decimal(20,0)" : "bigint");
		else
			snprintf(out, outsz, "%s", a);
		return out;
	}
	snprintf(out, outsz, "string");
	return out;
}

/* ---- Hive type -> Trino type id (view column lists) ---- */

static const char *trino_scalar(const char *h, size_t n)
{
	static const struct {
		const char *hive, *trino;
	} names[] = {
	    {"string", "varchar"},   {"int", "integer"}, {"timestamp", "timestamp(3)"},
	    {"binary", "varbinary"}, {"float", "real"},
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strlen(names[i].hive) == n && strncmp(h, names[i].hive, n) == 0)
			return names[i].trino;
	}
	return NULL;
}

/* Convert h[0..) up to the end of one type; returns the characters consumed. */
static size_t trino_convert(const char *h, char *out, size_t outsz, size_t *o)
{
	size_t i = 0;

#define EMIT(c)                                                                                    \
	do {                                                                                       \
		if (*o + 1 < outsz)                                                                \
			out[(*o)++] = (c);                                                         \
	} while (0)
	if (strncmp(h, "array<", 6) == 0) {
		const char *s = "array(";

		while (*s)
			EMIT(*s++);
		i = 6 + trino_convert(h + 6, out, outsz, o);
		if (h[i] == '>')
			i++;
		EMIT(')');
		return i;
	}
	if (strncmp(h, "struct<", 7) == 0) {
		const char *s = "row(";

		while (*s)
			EMIT(*s++);
		i = 7;
		while (h[i] && h[i] != '>') {
			while (h[i] && h[i] != ':')
				EMIT(h[i++]);
			if (h[i] == ':')
				i++;
			EMIT(' ');
			i += trino_convert(h + i, out, outsz, o);
			if (h[i] == ',') {
				EMIT(',');
				EMIT(' ');
				i++;
			}
		}
		if (h[i] == '>')
			i++;
		EMIT(')');
		return i;
	}
	{
		size_t n = 0;
		const char *t;

		while (h[n] && h[n] != ',' && h[n] != '>') {
			if (h[n] == '(') { /* decimal(10,2): keep the arguments */
				while (h[n] && h[n] != ')')
					n++;
				if (h[n] == ')')
					n++;
				break;
			}
			n++;
		}
		t = trino_scalar(h, n);
		if (t)
			while (*t)
				EMIT(*t++);
		else
			for (size_t k = 0; k < n; k++)
				EMIT(h[k]);
		i = n;
	}
#undef EMIT
	return i;
}

const char *athena_trino_type(const char *hive_type, char *out, size_t outsz)
{
	size_t o = 0;

	if (outsz == 0)
		return out;
	trino_convert(hive_type, out, outsz, &o);
	out[o] = '\0';
	return out;
}
