/*
 * demo.c - `ingesta demo`: the whole pipeline with no servers.
 *
 * Builds a small SQLite database shaped like the original deployment's MS1
 * data (users, orders, products: decimals, datetimes, a blob, NULLs), collects
 * it into ./demo-spool, uploads it to the file:// bucket ./demo-bucket, then
 * prints the bucket tree and the spool status. Deterministic data, seconds.
 */
#include "demo.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "util.h"

static const char demo_sql[] =
    "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT, "
    "  country TEXT, balance NUMERIC, created_at DATETIME, avatar BLOB);\n"
    "CREATE TABLE products (id INTEGER PRIMARY KEY, sku TEXT, name TEXT, price NUMERIC, "
    "  weight_kg REAL, description TEXT, created_at DATETIME);\n"
    "CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER, product_id INTEGER, "
    "  quantity INTEGER, total NUMERIC, status TEXT, ordered_at DATETIME, note TEXT);\n";

static const char *const names[] = {"Ana García",   "Bjørn Olsen",  "Chen Wei",     "Dmitri Ivanov",
                                    "Emma Brown",   "Fatima Zahra", "Giulia Rossi", "Hiro Tanaka",
                                    "Isabel Núñez", "Jonas Müller"};
static const char *const emails[] = {"ana.garcia",   "bjorn.olsen",  "chen.wei",     NULL,
                                     "emma.brown",   "fatima.zahra", "giulia.rossi", "hiro.tanaka",
                                     "isabel.nunez", "jonas.muller"};
static const char *const countries[] = {"ES", "NO", "CN", "RU", "GB", "MA", "IT", "JP", "MX", "DE"};
static const char *const products[] = {"Keyboard", "Mouse",   "Monitor 27\"", "USB-C hub",
                                       "Webcam",   "Headset", "Desk lamp",    "Chair",
                                       "Notebook", "Pen set", "Cable 2m",     "Stand"};
static const char *const statuses[] = {"paid", "shipped", "delivered", "cancelled", "pending"};

static int exec(sqlite3 *db, const char *sql, struct ierr *e)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		ierr_set(e, IERR_INTERNAL, "demo database: %s", msg ? msg : "error");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

int demo_make_source(const char *path, struct ierr *e)
{
	sqlite3 *db = NULL;
	struct buf sql = {0};
	int rc = -1;

	unlink(path);
	if (sqlite3_open(path, &db) != SQLITE_OK) {
		ierr_set(e, IERR_IO, "demo database %s: %s", path, sqlite3_errmsg(db));
		sqlite3_close(db);
		return -1;
	}
	buf_puts(&sql, "BEGIN;\n");
	buf_puts(&sql, demo_sql);
	for (int i = 0; i < 10; i++) {
		buf_printf(&sql,
		           "INSERT INTO users VALUES (%d, '%s', %s%s%s, '%s', %d.%02d, "
		           "'2025-10-%02d %02d:%02d:00', %s);\n",
		           i + 1, names[i], emails[i] ? "'" : "", emails[i] ? emails[i] : "NULL",
		           emails[i] ? "@example.com'" : "", countries[i], 100 * (i + 1) + 7 * i,
		           (i * 37) % 100, i + 1, 8 + i, (i * 13) % 60,
		           i == 0 ? "x'89504e470d0a1a0a'" : "NULL");
	}
	for (int i = 0; i < 12; i++) {
		buf_printf(&sql,
		           "INSERT INTO products VALUES (%d, 'SKU-%04d', '%s', %d.%02d, %.3f, %s, "
		           "'2025-09-%02d 12:00:00');\n",
		           i + 1, 1000 + i, products[i], 5 + 13 * i, (i * 41) % 100,
		           0.125 * (i + 1), i % 4 == 0 ? "NULL" : "'ergonomic, 2-year warranty'",
		           i + 1);
	}
	for (int i = 0; i < 15; i++) {
		buf_printf(&sql,
		           "INSERT INTO orders VALUES (%d, %d, %d, %d, %d.%02d, '%s', "
		           "'2025-10-%02dT%02d:%02d:%02d', %s);\n",
		           i + 1, i % 10 + 1, i % 12 + 1, i % 3 + 1, 20 + 9 * i, (i * 29) % 100,
		           statuses[i % 5], 5 + i % 20, 9 + i % 10, (i * 7) % 60, (i * 11) % 60,
		           i % 5 == 0 ? "'gift wrap \"please\"\\n'" : "NULL");
	}
	buf_puts(&sql, "COMMIT;\n");
	if (exec(db, buf_cstr(&sql), e) == 0)
		rc = 0;
	sqlite3_close(db);
	buf_free(&sql);
	return rc;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Print the tree below dir, sorted, with sizes. */
void demo_print_tree(const char *dir, int depth, FILE *out)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **names_v = NULL;
	size_t n = 0, cap = 0;

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			names_v = realloc(names_v, cap * sizeof(*names_v));
		}
		names_v[n++] = strdup(de->d_name);
	}
	closedir(d);
	if (n)
		qsort(names_v, n, sizeof(*names_v), cmp_str);
	for (size_t i = 0; i < n; i++) {
		char path[PATH_MAX];
		struct stat sb;

		snprintf(path, sizeof(path), "%s/%s", dir, names_v[i]);
		if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
			fprintf(out, "%*s%s/\n", depth * 2, "", names_v[i]);
			demo_print_tree(path, depth + 1, out);
		} else {
			fprintf(out, "%*s%s  (%lld bytes)\n", depth * 2, "", names_v[i],
			        (long long)sb.st_size);
		}
		free(names_v[i]);
	}
	free(names_v);
}
