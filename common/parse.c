/*
 * parse.c - durations and sizes (see parse.h).
 */
#include "parse.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The decimal number in front of the unit; *end is where the unit starts.
 * strtod() alone would also take "inf", "nan", signs, spaces and hex. */
static int parse_number(const char *s, double *v, char **end)
{
	if (s == NULL || !(isdigit((unsigned char)*s) || *s == '.'))
		return -1;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		return -1;
	errno = 0;
	*v = strtod(s, end);
	if (errno != 0 || *end == s || !(*v >= 0))
		return -1;
	return 0;
}

int parse_duration(const char *s, int64_t *ms)
{
	static const struct {
		const char *name;
		double ms;
	} units[] = {{"", 1000},     {"ms", 1},      {"s", 1000},    {"m", 60000},
	             {"min", 60000}, {"h", 3600000}, {"d", 86400000}};
	char *end = NULL;
	double v;

	if (parse_number(s, &v, &end) != 0)
		return -1;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].name) != 0)
			continue;
		if (v * units[i].ms > 9.0e15)
			return -1;
		*ms = (int64_t)(v * units[i].ms);
		return 0;
	}
	return -1;
}

int parse_size(const char *s, int64_t *bytes)
{
	static const char prefixes[] = "KMGT";
	char *end = NULL;
	double v, mult = 1;

	if (parse_number(s, &v, &end) != 0)
		return -1;
	if (*end != '\0') {
		const char *p = strchr(prefixes, toupper((unsigned char)*end));
		const char *rest = end + 1;

		if (p != NULL && *p != '\0') {
			for (const char *q = prefixes; q <= p; q++)
				mult *= 1024;
			if (*rest == 'i' || *rest == 'I')
				rest++;
			if (*rest == 'b' || *rest == 'B')
				rest++;
		} else if (toupper((unsigned char)*end) != 'B') {
			return -1;
		}
		if (*rest != '\0')
			return -1;
	}
	if (v * mult > 9.0e18)
		return -1;
	*bytes = (int64_t)(v * mult);
	return 0;
}
