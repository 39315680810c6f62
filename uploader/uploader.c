/*
 * uploader.c - the upload loop (contract in uploader.h).
 *
 * Concurrency is a pool of worker threads per pass, each with its own spool
 * connection: a worker claims a batch of segments (one transaction), uploads
 * them without holding any DB lock, and records their `uploaded` marks in one
 * transaction per batch (a retry or quarantine is recorded at once). Targets are
 * shared by all workers and are thread-safe. A pass ends when no segment is
 * due; the main thread then writes manifests and commit records (a batch at a
 * time, PUT by UPLOAD_CONCURRENCY threads: write_manifests), applies retention
 * and sleeps.
 */
#include "uploader.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/random.h>
#include <unistd.h>

#include "catalog.h"
#include "failpoint.h"
#include "log.h"
#include "metrics.h"
#include "spool.h"
#include "target.h"
#include "util.h"

#define MAX_TARGETS 16

struct uploader {
	const struct config *cfg;
	pthread_mutex_t lock; /* guards targets */
	struct target *targets[MAX_TARGETS];
	int ntargets;
	int max_attempts;
	int64_t retry_base_ms;
	int64_t retry_cap_ms;
	bool retire_now; /* RETENTION=0: workers delete the files they uploaded */
	int64_t uploads;
	int64_t errors;
	char fatal[1024];            /* a worker's error that must stop the uploader */
	struct catalog_ctx *catalog; /* Glue registration (GLUE_DATABASE), or NULL */
};

static struct target *get_target(struct uploader *u, const char *bucket, struct ierr *e)
{
	struct target *t = NULL;

	pthread_mutex_lock(&u->lock);
	for (int i = 0; i < u->ntargets; i++) {
		if (strcmp(u->targets[i]->bucket, bucket) == 0)
			t = u->targets[i];
	}
	if (t == NULL && u->ntargets < MAX_TARGETS) {
		t = target_open(bucket, u->cfg, e);
		if (t)
			u->targets[u->ntargets++] = t;
	} else if (t == NULL) {
		ierr_set(e, IERR_CONFIG, "too many distinct buckets in one spool (max %d)",
		         MAX_TARGETS);
	}
	pthread_mutex_unlock(&u->lock);
	return t;
}

/* Full jitter: uniform in [0, min(cap, base * 2^(attempt-1))]. */
static int64_t backoff_ms(const struct uploader *u, int attempt)
{
	int64_t ceiling = u->retry_base_ms;
	uint64_t r = 0;

	for (int i = 1; i < attempt && ceiling < u->retry_cap_ms; i++)
		ceiling *= 2;
	if (ceiling > u->retry_cap_ms)
		ceiling = u->retry_cap_ms;
	if (ceiling <= 0)
		return 0;
	if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
		r = (uint64_t)rand();
	return (int64_t)(r % (uint64_t)(ceiling + 1));
}

/* Claims per spool transaction: up to CLAIM_MAX segments, more than one only
 * while they add up to CLAIM_BYTES (small segments share a round trip, large
 * ones are spread over the workers). Their `uploaded` marks are committed
 * together too (flush_done). */
#define CLAIM_MAX   16
#define CLAIM_BYTES (2u * 1024 * 1024)

/* RETENTION=0: the files of uploaded segments, deleted by the worker that
 * sent them while the other workers keep sending: freeing a 16 MiB
 * page-cached file costs ~3 ms, and 64 of them one after another at the end
 * of a pass were a tenth of an `upload --once`. Each deletion batch costs a
 * WAL fsync (spool_retire_uploaded), so small segments are deleted together,
 * once RETIRE_BYTES of them are waiting. What a worker could not delete, the
 * pass's retention does. */
#define RETIRE_BYTES (4u * 1024 * 1024)

struct retire_queue {
	struct spool_done d[SPOOL_RETIRE_MAX];
	int n;
	uint64_t bytes;
};

static void retire_flush(struct spool *sp, struct retire_queue *rq)
{
	struct ierr e2;

	if (rq->n > 0 && spool_retire_uploaded(sp, rq->d, rq->n, &e2) < 0)
		log_event(LOG_WARNING, "retention", "error", e2.msg, NULL);
	rq->n = 0;
	rq->bytes = 0;
}

/* Commit the batch of `uploaded` marks. On failure the objects are there and
 * the rows stay `uploading`: the next start HEADs/compares and marks them.
 * rq (NULL unless RETENTION=0) takes the batch's files for deletion. */
static void flush_done(struct uploader *u, struct spool *sp, struct spool_done *done, int *ndone,
                       struct retire_queue *rq)
{
	struct ierr e2;

	if (*ndone == 0)
		return;
	if (spool_mark_uploaded_batch(sp, done, *ndone, &e2) != 0) {
		log_event(LOG_ERROR, "could not record uploads", "error", e2.msg, NULL);
		snprintf(u->fatal, sizeof(u->fatal), "%s", e2.msg);
	} else {
		FAILPOINT("upload.after_mark_uploaded");
		for (int i = 0; rq != NULL && i < *ndone; i++) {
			if (rq->n == SPOOL_RETIRE_MAX)
				retire_flush(sp, rq);
			rq->d[rq->n++] = done[i];
			rq->bytes += done[i].bytes;
		}
		if (rq != NULL && rq->bytes >= RETIRE_BYTES)
			retire_flush(sp, rq);
	}
	*ndone = 0;
}

static void record_outcome(struct uploader *u, struct spool *sp, const struct segment *seg, int rc,
                           const struct put_result *res, struct ierr *err, struct spool_done *done,
                           int *ndone)
{
	struct ierr e2;
	char attempts[16], size[32];

	snprintf(attempts, sizeof(attempts), "%d", seg->attempts);
	snprintf(size, sizeof(size), "%" PRIu64, seg->bytes);
	if (rc == 0) {
		struct spool_done *d = &done[(*ndone)++];

		d->id = seg->id;
		d->bytes = seg->bytes;
		snprintf(d->etag, sizeof(d->etag), "%s", res->etag);
		log_event(LOG_INFO,
		          res->already_present ? "segment already present, recorded"
		                               : "segment uploaded",
		          "bucket", seg->bucket, "key", seg->key, "bytes", size, "attempt",
		          attempts, NULL);
		return;
	}
	{
		char counter[128];

		snprintf(counter, sizeof(counter), "errors_total:%s",
		         res->code[0] ? res->code : "unknown");
		spool_counter_add(sp, counter, 1);
	}
	if (res->quarantine) {
		FAILPOINT("upload.before_mark_quarantined");
		spool_mark_quarantined(sp, seg->id, err->msg, &e2);
		log_event(LOG_ERROR, "segment quarantined", "key", seg->key, "error", err->msg,
		          NULL);
		return;
	}
	{
		bool permanent = err->code != IERR_TRANSIENT;
		int64_t next = now_ms() + backoff_ms(u, seg->attempts);
		bool last = permanent || seg->attempts >= u->max_attempts;

		FAILPOINT("upload.before_mark_retry");
		if (spool_mark_retry(sp, seg->id, permanent, next, u->max_attempts, res->code,
		                     err->msg, &e2) != 0) {
			snprintf(u->fatal, sizeof(u->fatal), "%s", e2.msg);
			return;
		}
		if (!last)
			spool_counter_add(sp, "retries_total", 1);
		log_event(last ? LOG_ERROR : LOG_WARNING,
		          last ? "upload failed (replay with `ingesta replay`)"
		               : "upload error, will retry",
		          "key", seg->key, "code", res->code, "attempt", attempts, "error",
		          err->msg, NULL);
	}
}

struct worker_arg {
	struct uploader *u;
	pthread_t thread;
};

static void *worker(void *p)
{
	struct worker_arg *wa = p;
	struct uploader *u = wa->u;
	struct ierr e;
	struct spool *sp = spool_open(config_str(u->cfg, "SPOOL_DIR"), SPOOL_ROLE_OPERATOR, &e);
	struct segment *segs = calloc(CLAIM_MAX, sizeof(*segs));
	struct spool_done *done = calloc(CLAIM_MAX, sizeof(*done));
	struct retire_queue *rq = u->retire_now ? calloc(1, sizeof(*rq)) : NULL;
	int ndone = 0;

	if (sp == NULL || segs == NULL || done == NULL || (u->retire_now && rq == NULL) ||
	    spool_relaxed_sync(sp, &e) != 0) {
		snprintf(u->fatal, sizeof(u->fatal), "%s",
		         sp != NULL &&
		                 (segs == NULL || done == NULL || (u->retire_now && rq == NULL))
		             ? "out of memory"
		             : e.msg);
		spool_close(sp);
		free(segs);
		free(done);
		free(rq);
		return NULL;
	}
	while (!ingesta_stop_requested && u->fatal[0] == '\0') {
		int n = spool_claim_batch(sp, segs, CLAIM_MAX, CLAIM_BYTES, &e);

		if (n <= 0) {
			if (n < 0)
				snprintf(u->fatal, sizeof(u->fatal), "%s", e.msg);
			break;
		}
		for (int i = 0; i < n; i++) {
			struct segment *seg = &segs[i];
			struct put_result res;
			struct target *t;
			int rc;

			if (ingesta_stop_requested || u->fatal[0] != '\0') {
				/* Not tried: give the claims back, uncounted. */
				if (spool_release_claims(sp, seg, n - i, &e) != 0)
					log_event(LOG_WARNING, "could not release claims", "error",
					          e.msg, NULL);
				break;
			}
			memset(&res, 0, sizeof(res));
			ierr_clear(&e);
			t = get_target(u, seg->bucket, &e);
			if (t == NULL) {
				snprintf(res.code, sizeof(res.code), "Config");
				e.code = IERR_PERMANENT;
				rc = -1;
			} else {
				int64_t t0 = monotonic_ms();

				FAILPOINT("upload.before_put");
				rc = t->ops->put_segment(t, sp, seg, &res, &e);
				metrics_observe_upload(rc == 0,
				                       (double)(monotonic_ms() - t0) / 1000.0);
				if (rc == 0)
					FAILPOINT("upload.after_put");
			}
			record_outcome(u, sp, seg, rc == 0 ? 0 : -1, &res, &e, done, &ndone);
		}
		flush_done(u, sp, done, &ndone, rq);
	}
	flush_done(u, sp, done, &ndone, rq);
	if (rq != NULL)
		retire_flush(sp, rq);
	spool_close(sp);
	free(segs);
	free(done);
	free(rq);
	return NULL;
}

static int run_pass(struct uploader *u, int nworkers)
{
	struct worker_arg wa[64];

	for (int i = 0; i < nworkers; i++) {
		wa[i].u = u;
		if (pthread_create(&wa[i].thread, NULL, worker, &wa[i]) != 0) {
			nworkers = i;
			break;
		}
	}
	for (int i = 0; i < nworkers; i++)
		pthread_join(wa[i].thread, NULL);
	return u->fatal[0] ? -1 : 0;
}

/*
 * Manifests and commit records go out UPLOAD_CONCURRENCY at a time. The main
 * thread claims a batch of up to OBJ_BATCH jobs (in partition id order: each
 * job is in one batch only, so no object is PUT by two threads), a pool of
 * threads PUTs them (no spool access: put_bytes needs none) while the main
 * thread claims the next batch, then the main thread records the batch's
 * outcomes in one spool transaction. A commit record's job exists only once
 * its manifest is recorded (spool_next_commit), and its catalog sync runs on
 * the main thread (the catalog context is not shared) before its PUT is
 * handed out.
 */
#define OBJ_BATCH   64
#define OBJ_THREADS 64

struct obj_put {
	struct target *t; /* NULL: not to be PUT (rc and e already set) */
	const char *key;
	const char *data;
	size_t len;
	bool commit; /* a commit record: its failpoints */
	bool tried;  /* false: skipped at a stop request, nothing to record */
	int rc;
	struct put_result res;
	struct ierr e;
};

/* One batch of PUTs and the threads working through it. */
struct obj_batch {
	struct obj_put puts[OBJ_BATCH];
	int n;
	int next;           /* the next put to hand out, under lock */
	bool stop_on_error; /* manifests: a failed PUT ends the batch */
	bool failed;        /* under lock */
	pthread_mutex_t lock;
	pthread_t th[OBJ_THREADS];
	int started;
};

static void *obj_putter(void *p)
{
	struct obj_batch *b = p;

	for (;;) {
		struct obj_put *o;
		int i = -1;

		pthread_mutex_lock(&b->lock);
		if (b->next < b->n && !ingesta_stop_requested && !b->failed)
			i = b->next++;
		pthread_mutex_unlock(&b->lock);
		if (i < 0)
			return NULL;
		o = &b->puts[i];
		if (o->t != NULL) {
			if (o->commit)
				FAILPOINT("commit.before_put");
			o->rc = o->t->ops->put_bytes(o->t, o->key, o->data, o->len, &o->res, &o->e);
			o->tried = true;
			if (o->rc == 0 && o->commit)
				FAILPOINT("commit.after_put");
		}
		if (o->rc != 0 && b->stop_on_error) {
			/* The rest waits for the next pass (untried, unrecorded). */
			pthread_mutex_lock(&b->lock);
			b->failed = true;
			pthread_mutex_unlock(&b->lock);
		}
	}
}

/* Start up to nthreads threads on b's puts (none: PUT them here, now). */
static void batch_start(struct obj_batch *b, int nthreads)
{
	b->next = 0;
	b->started = 0;
	b->failed = false;
	pthread_mutex_init(&b->lock, NULL);
	if (nthreads > b->n)
		nthreads = b->n;
	if (nthreads > OBJ_THREADS)
		nthreads = OBJ_THREADS;
	while (b->started < nthreads &&
	       pthread_create(&b->th[b->started], NULL, obj_putter, b) == 0)
		b->started++;
	if (b->started == 0)
		obj_putter(b);
}

static void batch_wait(struct obj_batch *b)
{
	for (int i = 0; i < b->started; i++)
		pthread_join(b->th[i], NULL);
	pthread_mutex_destroy(&b->lock);
}

static void obj_put_init(struct uploader *u, struct obj_put *o, const char *bucket, const char *key,
                         const char *data, size_t len)
{
	memset(o, 0, sizeof(*o));
	o->key = key;
	o->data = data;
	o->len = len;
	o->t = get_target(u, bucket, &o->e);
	if (o->t == NULL) {
		o->rc = -1;
		o->tried = true;
	}
}

static int obj_threads(const struct uploader *u)
{
	int n = (int)config_int(u->cfg, "UPLOAD_CONCURRENCY");

	return n < 1 ? 1 : n;
}

/* What manifests and commit records share: two batches, one in flight while
 * the other is claimed. */
struct obj_flow {
	struct uploader *u;
	struct spool *sp;
	struct obj_batch b[2];
	/* Fill b[slot] with the next jobs: how many, -1 after a spool error. */
	int (*claim)(struct obj_flow *f, int slot);
	/* Record b[slot]'s outcomes; false: claim and start no more. */
	bool (*record)(struct obj_flow *f, int slot);
	/* Free b[slot]'s jobs. */
	void (*release)(struct obj_flow *f, int slot);
};

/* Claim batch k+1 while batch k is in flight, then record k and start k+1.
 * Ends with a batch that is not full (nothing more is due), at a stop
 * request, or when record() says so. */
static void obj_flow_run(struct obj_flow *f)
{
	int nthreads = obj_threads(f->u), cur = 0;
	bool more = false;

	f->b[0].n = f->b[1].n = 0;
	if (!ingesta_stop_requested) {
		more = f->claim(f, 0) == OBJ_BATCH;
		if (f->b[0].n > 0)
			batch_start(&f->b[0], nthreads);
	}
	while (f->b[cur].n > 0) {
		int nxt = cur ^ 1;
		bool go;

		if (more && !ingesta_stop_requested)
			more = f->claim(f, nxt) == OBJ_BATCH;
		batch_wait(&f->b[cur]);
		go = f->record(f, cur) && !ingesta_stop_requested;
		f->release(f, cur);
		f->b[cur].n = 0;
		if (!go) {
			f->release(f, nxt);
			f->b[nxt].n = 0;
		} else if (f->b[nxt].n > 0) {
			batch_start(&f->b[nxt], nthreads);
		}
		cur = nxt;
	}
}

struct manifest_flow {
	struct obj_flow f; /* first: the callbacks cast back */
	struct manifest_job jobs[2][OBJ_BATCH];
	int64_t after;
	bool pending;
};

/* The next batch of manifests (id > after). */
static int claim_manifests(struct obj_flow *f, int slot)
{
	struct manifest_flow *m = (struct manifest_flow *)f;
	struct manifest_job *jobs = m->jobs[slot];
	struct obj_batch *b = &f->b[slot];
	struct ierr e;

	b->n = 0;
	b->stop_on_error = true;
	while (b->n < OBJ_BATCH &&
	       spool_next_manifest_after(f->sp, m->after, &jobs[b->n], &e) == 1) {
		m->after = jobs[b->n].partition_id;
		obj_put_init(f->u, &b->puts[b->n], jobs[b->n].bucket, jobs[b->n].key,
		             jobs[b->n].json, strlen(jobs[b->n].json));
		b->n++;
	}
	return b->n;
}

/* A finished batch of manifests, recorded in one transaction. One that is
 * not written is retried on the next pass and ends this one: the batch's
 * PUTs not handed out yet wait for that pass (a target that is down costs up
 * to UPLOAD_CONCURRENCY failed PUTs a pass, not a batch of them). */
static bool record_manifests(struct obj_flow *f, int slot)
{
	struct manifest_flow *m = (struct manifest_flow *)f;
	struct manifest_job *jobs = m->jobs[slot];
	struct obj_batch *b = &f->b[slot];
	int64_t ids[OBJ_BATCH];
	const char *keys[OBJ_BATCH];
	struct ierr e;
	int nok = 0;

	for (int i = 0; i < b->n; i++) {
		if (!b->puts[i].tried)
			continue;
		if (b->puts[i].rc != 0) {
			log_event(LOG_WARNING, "manifest not written yet", "key", jobs[i].key,
			          "error", b->puts[i].e.msg, NULL);
			m->pending = true;
			continue;
		}
		FAILPOINT("manifest.before_record");
		ids[nok] = jobs[i].partition_id;
		keys[nok++] = jobs[i].key;
	}
	if (spool_manifests_written(f->sp, ids, keys, nok, &e) != 0) {
		log_event(LOG_WARNING, "manifests written but not recorded", "error", e.msg, NULL);
		m->pending = true;
	} else {
		for (int i = 0; i < b->n; i++)
			if (b->puts[i].tried && b->puts[i].rc == 0)
				log_event(LOG_INFO, "partition manifest written", "bucket",
				          jobs[i].bucket, "key", jobs[i].key, NULL);
	}
	return !m->pending;
}

static void release_manifests(struct obj_flow *f, int slot)
{
	struct manifest_flow *m = (struct manifest_flow *)f;

	for (int i = 0; i < f->b[slot].n; i++)
		free(m->jobs[slot][i].json);
}

/* Write the manifests of fully uploaded partitions. Returns true when one
 * could not be written (it is retried on the next pass). */
static bool write_manifests(struct uploader *u, struct spool *sp)
{
	struct manifest_flow *m = calloc(1, sizeof(*m));
	bool pending;

	if (m == NULL)
		return true;
	m->f = (struct obj_flow){.u = u,
	                         .sp = sp,
	                         .claim = claim_manifests,
	                         .record = record_manifests,
	                         .release = release_manifests};
	obj_flow_run(&m->f);
	pending = m->pending;
	free(m);
	return pending;
}

struct commit_flow {
	struct obj_flow f; /* first: the callbacks cast back */
	struct commit_job jobs[2][OBJ_BATCH];
	int64_t after;
	int64_t now;
	bool unrecorded; /* outcomes that could not be recorded */
};

/* The next batch of due commit records (id > after), each after its catalog
 * sync. */
static int claim_commits(struct obj_flow *f, int slot)
{
	struct commit_flow *c = (struct commit_flow *)f;
	struct commit_job *jobs = c->jobs[slot];
	struct obj_batch *b = &f->b[slot];
	struct ierr e;
	int rc = 0;

	b->n = 0;
	while (b->n < OBJ_BATCH &&
	       (rc = spool_next_commit_after(f->sp, c->now, c->after, &jobs[b->n], &e)) == 1) {
		struct commit_job *job = &jobs[b->n];
		struct obj_put *o = &b->puts[b->n++];

		c->after = job->partition_id;
		obj_put_init(f->u, o, job->bucket, job->key, job->json, job->json_len);
		o->commit = true;
		/* The catalog first: a reader that sees the record finds the table
		 * (and its new columns) registered. */
		if (o->t != NULL && f->u->catalog != NULL &&
		    catalog_sync_partition(f->u->catalog, f->sp, job->partition_id, &o->e) != 0) {
			o->t = NULL;
			o->rc = -1;
			o->tried = true;
		}
	}
	if (rc < 0) {
		log_event(LOG_WARNING, "commit records", "error", e.msg, NULL);
		return -1;
	}
	return b->n;
}

/* A finished batch of commit records: written, retry with backoff, or
 * `failed` (permanent, or the last attempt), in one transaction. */
static bool record_commits(struct obj_flow *f, int slot)
{
	struct commit_flow *c = (struct commit_flow *)f;
	struct commit_job *jobs = c->jobs[slot];
	struct obj_batch *b = &f->b[slot];
	struct commit_outcome out[OBJ_BATCH] = {{0}};
	const struct commit_job *of[OBJ_BATCH];
	struct ierr e;
	int nout = 0;

	for (int i = 0; i < b->n; i++) {
		struct commit_outcome *oc = &out[nout];
		int attempt = jobs[i].attempts + 1;

		if (!b->puts[i].tried)
			continue;
		memset(oc, 0, sizeof(*oc));
		of[nout++] = &jobs[i];
		oc->partition_id = jobs[i].partition_id;
		oc->key = jobs[i].key;
		oc->written = b->puts[i].rc == 0;
		if (oc->written)
			continue;
		oc->permanent =
		    b->puts[i].e.code != IERR_TRANSIENT || attempt >= f->u->max_attempts;
		oc->next_at = now_ms() + backoff_ms(f->u, attempt);
		oc->msg = b->puts[i].e.msg;
	}
	if (spool_commits_record(f->sp, out, nout, &e) != 0) {
		log_event(LOG_WARNING, "commit records written but not recorded", "error", e.msg,
		          NULL);
		c->unrecorded = true;
		return false;
	}
	for (int i = 0; i < nout; i++) {
		if (out[i].written)
			log_event(LOG_INFO, "commit record written", "bucket", of[i]->bucket, "key",
			          of[i]->key, "table", of[i]->table, "run", of[i]->run_id, NULL);
		else
			log_event(out[i].permanent ? LOG_ERROR : LOG_WARNING,
			          out[i].permanent
			              ? "commit record failed (replay with `ingesta replay`)"
			              : "commit record not written yet, will retry",
			          "key", of[i]->key, "error", out[i].msg, NULL);
	}
	return true;
}

static void release_commits(struct obj_flow *f, int slot)
{
	struct commit_flow *c = (struct commit_flow *)f;

	for (int i = 0; i < f->b[slot].n; i++)
		free(c->jobs[slot][i].json);
}

/* Write the commit records of partitions whose manifest is written
 * (spool/commit_log.c). A record that cannot be written is retried with
 * backoff; a permanent error leaves it `failed` for `ingesta replay`.
 * Returns true when records are still waiting. */
static bool write_commits(struct uploader *u, struct spool *sp)
{
	struct commit_flow *c = calloc(1, sizeof(*c));
	bool unrecorded;

	if (c == NULL)
		return true;
	c->f = (struct obj_flow){.u = u,
	                         .sp = sp,
	                         .claim = claim_commits,
	                         .record = record_commits,
	                         .release = release_commits};
	c->now = now_ms();
	obj_flow_run(&c->f);
	unrecorded = c->unrecorded;
	free(c);
	return unrecorded || spool_commits_waiting(sp, NULL) > 0;
}

/* Sleep until the wake-up file changes or timeout_ms passes (at most 1 s, so
 * signals are noticed). Returns true when inotify fired. */
static bool wait_for_work(int ino, int64_t timeout_ms)
{
	struct pollfd pfd = {.fd = ino, .events = POLLIN};
	char buf[4096] __attribute__((aligned(8)));
	bool woke = false;

	if (timeout_ms < 0)
		timeout_ms = 0;
	if (timeout_ms > 1000)
		timeout_ms = 1000;
	if (ino < 0) {
		usleep((useconds_t)timeout_ms * 1000);
		return false;
	}
	if (poll(&pfd, 1, (int)timeout_ms) > 0) {
		ssize_t n;

		/* Only .wakeup (touched by collectors and replay) means "look now":
		 * the uploader's own writes to spool.db must not wake it again.
		 * IN_Q_OVERFLOW: events were lost, so look anyway. */
		while ((n = read(ino, buf, sizeof(buf))) > 0) {
			for (char *p = buf; p < buf + n;) {
				const struct inotify_event *ev = (const struct inotify_event *)p;

				if ((ev->mask & IN_Q_OVERFLOW) ||
				    (ev->len > 0 && strcmp(ev->name, ".wakeup") == 0))
					woke = true;
				p += sizeof(*ev) + ev->len;
			}
		}
	}
	return woke;
}

int uploader_run(const struct config *cfg, bool once, int64_t *failed_left, struct ierr *e)
{
	struct uploader u;
	struct spool *sp;
	int ino = -1;
	int rc = 0;
	int64_t rescan_ms = config_int(cfg, "RESCAN_INTERVAL");
	int64_t retention_ms = config_int(cfg, "RETENTION");
	int nworkers = (int)config_int(cfg, "UPLOAD_CONCURRENCY");
	int64_t last_scan = 0;
	bool work = true;
	bool manifest_pending = false;
	bool commits_pending = false;
	int manifest_rounds = 0;
	int64_t manifests_left = 0;

	memset(&u, 0, sizeof(u));
	pthread_mutex_init(&u.lock, NULL);
	u.cfg = cfg;
	u.max_attempts = (int)config_int(cfg, "MAX_ATTEMPTS");
	u.retry_base_ms = config_int(cfg, "RETRY_BASE");
	u.retry_cap_ms = config_int(cfg, "RETRY_CAP");
	u.retire_now = retention_ms <= 0;
	*failed_left = 0;

	sp = spool_open(config_str(cfg, "SPOOL_DIR"), SPOOL_ROLE_UPLOADER, e);
	if (sp == NULL)
		return -1;
	if (spool_uploader_lock(sp, e) != 0 || spool_relaxed_sync(sp, e) != 0) {
		spool_close(sp);
		return -1;
	}
	if (catalog_enabled(cfg)) {
		u.catalog = catalog_ctx_new(cfg, e);
		if (u.catalog == NULL) {
			spool_close(sp);
			return -1;
		}
	}
	ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (ino >= 0) {
		if (inotify_add_watch(ino, config_str(cfg, "SPOOL_DIR"),
		                      IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE) < 0) {
			close(ino);
			ino = -1;
		}
	}
	log_event(LOG_INFO, "uploader started", "spool", config_str(cfg, "SPOOL_DIR"), "mode",
	          once ? "once" : "daemon", NULL);
	if (metrics_start(cfg, e) != 0) {
		if (e->code == IERR_CONFIG)
			rc = -1; /* METRICS_LISTEN cannot be served: stop (exit 2) */
		else
			log_event(LOG_WARNING, "metrics/notify not started", "error", e->msg, NULL);
	}

	while (rc == 0 && !ingesta_stop_requested) {
		int64_t due, wait;

		if (work) {
			if (run_pass(&u, nworkers) != 0) {
				rc = ierr_set(e, IERR_SPOOL, "uploader stopped: %s", u.fatal);
				break;
			}
			for (int i = 0; i < u.ntargets && !ingesta_stop_requested; i++) {
				if (u.targets[i]->ops->sweep)
					u.targets[i]->ops->sweep(u.targets[i], sp);
			}
			manifest_pending = write_manifests(&u, sp);
			commits_pending = write_commits(&u, sp);
			if (spool_apply_retention(sp, retention_ms, e) < 0)
				log_event(LOG_WARNING, "retention", "error", e->msg, NULL);
			last_scan = monotonic_ms();
		}
		due = spool_next_due(sp);
		{
			int64_t commit_due;

			if (spool_commits_waiting(sp, &commit_due) > 0 &&
			    (due < 0 || commit_due < due))
				due = commit_due;
		}
		if (once && spool_next_due(sp) < 0 && spool_count_state(sp, "uploading") == 0) {
			int64_t commit_due = -1;

			if (!manifest_pending && !commits_pending)
				break;
			/* --once also waits for the manifests, with the same patience as
			 * for segments; then it reports them as left over. Commit records
			 * count their own attempts (MAX_ATTEMPTS, then `failed`), so it
			 * waits for each one's next try until it is written or failed. */
			if (manifest_pending && ++manifest_rounds > u.max_attempts) {
				log_event(LOG_ERROR,
				          "manifests could not be written; they are retried by the "
				          "next upload",
				          NULL);
				manifests_left = 1;
				break;
			}
			if (!manifest_pending && spool_commits_waiting(sp, &commit_due) > 0)
				wait_for_work(ino, commit_due - now_ms());
			else
				wait_for_work(ino, backoff_ms(&u, manifest_rounds));
			work = true;
			continue;
		}
		wait = rescan_ms - (monotonic_ms() - last_scan);
		if (due >= 0 && due - now_ms() < wait)
			wait = due - now_ms();
		work = wait_for_work(ino, wait);
		if (monotonic_ms() - last_scan >= rescan_ms || (due >= 0 && due <= now_ms()))
			work = true;
		if (work) {
			/* Collectors that died since the last pass leave work to undo. */
			struct ierr e2;

			spool_recover(sp, &e2);
		}
	}
	metrics_stop();
	*failed_left = spool_count_state(sp, "failed") + spool_count_state(sp, "quarantined") +
	               manifests_left + spool_commits_failed(sp);
	if (ino >= 0)
		close(ino);
	for (int i = 0; i < u.ntargets; i++)
		u.targets[i]->ops->free(u.targets[i]);
	catalog_ctx_free(u.catalog);
	spool_close(sp);
	pthread_mutex_destroy(&u.lock);
	log_event(LOG_INFO, "uploader stopped", NULL);
	return rc;
}
