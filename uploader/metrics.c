/*
 * metrics.c - Prometheus text exposition (format 0.0.4) of the spool and the
 * uploader, written atomically to METRICS_FILE and served at METRICS_LISTEN
 * (contract in metrics.h).
 *
 * The metrics thread has its own spool connection (operator role: it only
 * reads), so it never competes with the upload workers for theirs.
 */
#include "metrics.h"

#include <inttypes.h>
#include <pthread.h>
#include <string.h>

#include "http_metrics.h"
#include "log.h"
#include "notify.h"
#include "status.h"
#include "util.h"

/* Upper bounds of the upload duration buckets, seconds (+Inf implied). */
static const double bounds[] = {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};
#define NBOUNDS (sizeof(bounds) / sizeof(bounds[0]))

struct histogram {
	uint64_t buckets[NBOUNDS + 1]; /* not cumulative; last = above every bound */
	uint64_t count;
	double sum;
};

static struct {
	pthread_mutex_t lock;
	struct histogram hist[2]; /* [0] error, [1] ok */
	struct spool *sp;
	char path[4096];
	int64_t quota;
	bool warned;
} m = {.lock = PTHREAD_MUTEX_INITIALIZER};

void metrics_observe_upload(bool ok, double seconds)
{
	struct histogram *h = &m.hist[ok ? 1 : 0];
	size_t i = 0;

	while (i < NBOUNDS && seconds > bounds[i])
		i++;
	pthread_mutex_lock(&m.lock);
	h->buckets[i]++;
	h->count++;
	h->sum += seconds;
	pthread_mutex_unlock(&m.lock);
}

static void family(struct buf *b, const char *name, const char *type, const char *help)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value with \, " and newline escaped, as the format requires. */
static void label_value(struct buf *b, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			buf_putc(b, '\\');
		if (*v == '\n') {
			buf_puts(b, "\\n");
			continue;
		}
		buf_putc(b, *v);
	}
}

static void render_counters(struct spool *sp, struct buf *b)
{
	sqlite3_stmt *st = NULL;
	int64_t uploads = 0, bytes = 0, retries = 0;
	struct buf errors = {0};

	if (sqlite3_prepare_v2(spool_db(sp), "SELECT name, value FROM counters ORDER BY name", -1,
	                       &st, NULL) == SQLITE_OK) {
		while (sqlite3_step(st) == SQLITE_ROW) {
			const char *name = (const char *)sqlite3_column_text(st, 0);
			int64_t v = sqlite3_column_int64(st, 1);

			if (strcmp(name, "uploads_total") == 0) {
				uploads = v;
			} else if (strcmp(name, "uploaded_bytes_total") == 0) {
				bytes = v;
			} else if (strcmp(name, "retries_total") == 0) {
				retries = v;
			} else if (strncmp(name, "errors_total:", 13) == 0) {
				buf_puts(&errors, "ingesta_upload_errors_total{code=\"");
				label_value(&errors, name + 13);
				buf_printf(&errors, "\"} %" PRId64 "\n", v);
			}
		}
	}
	sqlite3_finalize(st);
	family(b, "ingesta_uploads_total", "counter",
	       "Segments uploaded (confirmed by the target).");
	buf_printf(b, "ingesta_uploads_total %" PRId64 "\n", uploads);
	family(b, "ingesta_uploaded_bytes_total", "counter", "Bytes of segments uploaded.");
	buf_printf(b, "ingesta_uploaded_bytes_total %" PRId64 "\n", bytes);
	family(b, "ingesta_upload_retries_total", "counter",
	       "Upload attempts that failed and were scheduled again with backoff.");
	buf_printf(b, "ingesta_upload_retries_total %" PRId64 "\n", retries);
	family(b, "ingesta_upload_errors_total", "counter",
	       "Failed upload attempts by S3 error code (or errno name).");
	buf_append(b, errors.data ? errors.data : "", errors.len);
	buf_free(&errors);
}

static void render_histogram(struct buf *b)
{
	struct histogram h[2];

	pthread_mutex_lock(&m.lock);
	memcpy(h, m.hist, sizeof(h));
	pthread_mutex_unlock(&m.lock);
	family(b, "ingesta_upload_duration_seconds", "histogram",
	       "Time of one segment upload attempt (since this uploader started), by result.");
	for (int r = 1; r >= 0; r--) {
		const char *res = r ? "ok" : "error";
		uint64_t cum = 0;

		for (size_t i = 0; i < NBOUNDS; i++) {
			cum += h[r].buckets[i];
			buf_printf(
			    b,
			    "ingesta_upload_duration_seconds_bucket{result=\"%s\",le=\"%g\"} "
			    "%" PRIu64 "\n",
			    res, bounds[i], cum);
		}
		cum += h[r].buckets[NBOUNDS];
		buf_printf(b,
		           "ingesta_upload_duration_seconds_bucket{result=\"%s\",le=\"+Inf\"} "
		           "%" PRIu64 "\n",
		           res, cum);
		buf_printf(b, "ingesta_upload_duration_seconds_sum{result=\"%s\"} %.6f\n", res,
		           h[r].sum);
		buf_printf(b, "ingesta_upload_duration_seconds_count{result=\"%s\"} %" PRIu64 "\n",
		           res, h[r].count);
	}
}

int metrics_render(struct spool *sp, int64_t quota_bytes, struct buf *b, struct ierr *e)
{
	struct status_summary s;

	if (status_summary_load(sp, &s, e) != 0)
		return -1;
	family(b, "ingesta_segments", "gauge", "Segments in the spool index, by state.");
	for (int i = 0; i < STATUS_NSTATES; i++)
		buf_printf(b, "ingesta_segments{state=\"%s\"} %" PRId64 "\n", status_states[i],
		           s.states[i].segments);
	family(b, "ingesta_segment_bytes", "gauge",
	       "Bytes of the segments in the spool index, by state.");
	for (int i = 0; i < STATUS_NSTATES; i++)
		buf_printf(b, "ingesta_segment_bytes{state=\"%s\"} %" PRId64 "\n", status_states[i],
		           s.states[i].bytes);
	family(b, "ingesta_segment_rows", "gauge",
	       "Rows in the segments of the spool index, by state.");
	for (int i = 0; i < STATUS_NSTATES; i++)
		buf_printf(b, "ingesta_segment_rows{state=\"%s\"} %" PRId64 "\n", status_states[i],
		           s.states[i].rows);
	render_counters(sp, b);
	render_histogram(b);
	family(b, "ingesta_oldest_not_uploaded_age_seconds", "gauge",
	       "Age of the oldest segment sealed but not uploaded (0 when none).");
	buf_printf(b, "ingesta_oldest_not_uploaded_age_seconds %" PRId64 "\n",
	           s.oldest_not_uploaded < 0 ? 0 : (s.generated_at - s.oldest_not_uploaded) / 1000);
	family(b, "ingesta_last_upload_timestamp_seconds", "gauge",
	       "Unix time of the last successful upload (0 when none).");
	buf_printf(b, "ingesta_last_upload_timestamp_seconds %.3f\n",
	           s.last_upload_at < 0 ? 0.0 : (double)s.last_upload_at / 1000.0);
	family(b, "ingesta_spool_bytes", "gauge", "Bytes of segment files in the spool.");
	buf_printf(b, "ingesta_spool_bytes %" PRId64 "\n", s.spool_bytes);
	family(b, "ingesta_spool_quota_bytes", "gauge", "SPOOL_MAX_BYTES (0: no quota).");
	buf_printf(b, "ingesta_spool_quota_bytes %" PRId64 "\n", quota_bytes);
	family(b, "ingesta_uploader_running", "gauge",
	       "1 when an uploader holds the spool's uploader lock.");
	buf_printf(b, "ingesta_uploader_running %d\n", s.uploader_running ? 1 : 0);
	family(b, "ingesta_metrics_timestamp_seconds", "gauge", "Unix time this file was written.");
	buf_printf(b, "ingesta_metrics_timestamp_seconds %.3f\n", (double)s.generated_at / 1000.0);
	return 0;
}

static void refresh(void *arg)
{
	struct buf b = {0};
	struct ierr e = {0};

	(void)arg;
	if (m.sp == NULL)
		return;
	if (metrics_render(m.sp, m.quota, &b, &e) != 0 ||
	    write_file_atomic(m.path, b.data ? b.data : "", b.len, &e) != 0) {
		if (!m.warned)
			log_event(LOG_WARNING, "metrics file not written", "file", m.path, "error",
			          e.msg, NULL);
		m.warned = true;
	} else {
		m.warned = false;
	}
	buf_free(&b);
}

int metrics_start(const struct config *cfg, struct ierr *e)
{
	struct service_hooks h = {.period_ms = METRICS_PERIOD_MS, .ready = true};
	const char *path = config_str(cfg, "METRICS_FILE");
	struct http_metrics_opts ho = {.listen = config_str(cfg, "METRICS_LISTEN"),
	                               .spool_dir = config_str(cfg, "SPOOL_DIR"),
	                               .quota_bytes = config_int(cfg, "SPOOL_MAX_BYTES")};

	memset(m.hist, 0, sizeof(m.hist));
	m.quota = config_int(cfg, "SPOOL_MAX_BYTES");
	/* First: a METRICS_LISTEN that cannot be served stops the uploader. */
	if (*ho.listen && http_metrics_start(&ho, e) != 0)
		return -1;
	if (*path) {
		snprintf(m.path, sizeof(m.path), "%s", path);
		m.sp = spool_open(config_str(cfg, "SPOOL_DIR"), SPOOL_ROLE_OPERATOR, e);
		if (m.sp == NULL)
			ierr_prefix(e, "METRICS_FILE");
		else
			h.periodic = refresh;
	}
	if (service_start(&h, e) != 0)
		return -1;
	return *path && m.sp == NULL ? -1 : 0;
}

void metrics_stop(void)
{
	http_metrics_stop();
	service_stop();
	if (m.sp) {
		spool_close(m.sp);
		m.sp = NULL;
	}
}
