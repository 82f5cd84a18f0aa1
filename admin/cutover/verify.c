/*
 * verify.c - a VERIFY run (see verify.h and verify_int.h): its tasks and
 * workers, the scheduler, and the first-pass ranges of each table.  The
 * start, the listing of the tables, the stop and the views are in
 * verify_run.c.
 *
 * The scheduler hands ready tasks to free workers (a connection to each
 * side; verify_jobs of them, so at most verify_jobs queries run per side),
 * and makes the next first-pass range of the next table when no task is
 * ready.  Tasks waiting for replication hold no worker.  Ranges are made a
 * few ahead of the workers only, so memory stays bounded whatever the size
 * of the tables.  Scheduling runs from a zero-delay event, never from
 * inside a query's callback.
 */
#include "admin/cutover/verify.h"

#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/cutover/control.h"
#include "admin/cutover/verify_int.h"
#include "protocol/pq_build.h"
#include "proxy/core/config.h"
#include "proxy/core/log.h"
#include "proxy/core/route.h"
#include "proxy/database.h"
#include "proxy/runtime.h"

/* Tasks alive per worker at most (ready, waiting or running): bounds memory. */
#define TASKS_PER_WORKER 8

/* ---- small things ---- */

void verify_now_text(char *buf, size_t len)
{
	struct route_state now;

	route_now(&now);
	snprintf(buf, len, "%s", now.switched_at);
}

static int live_tasks(const struct verify_run *run)
{
	int n = 0;
	struct list_node *it;

	list_for_each(it, &run->tables)
		n += list_entry(it, struct verify_table, node)->tasks;
	return n;
}

uint64_t verify_read_position(struct verify_run *run, const PGresult *res, int col)
{
	switch (run->dc->d.lag_method) {
	case LAG_LSN:
		for (int i = 0; res && col >= 0 && i < PQntuples(res); i++)
			if (col < PQnfields(res) && !PQgetisnull(res, i, col))
				return verify_parse_lsn(PQgetvalue(res, i, col));
		return 0;
	case LAG_MARKER:
		return ++run->reads;
	default:
		return 0;
	}
}

/* ---- results ---- */

void verify_add_diff(struct verify_run *run, struct verify_table *t, const char *key,
		     const char *kind)
{
	struct verify_diff *d;
	char at[40];

	if (strcmp(kind, "missing") == 0)
		t->rows_missing++;
	else if (strcmp(kind, "extra") == 0)
		t->rows_extra++;
	else
		t->rows_different++;
	log_warning("verify %s: %s %s: %s", run->dbname, t->label, key, kind);
	if (run->ndiffs >= VERIFY_DIFFS_MAX)
		return;
	if (run->diffs == NULL && (run->diffs = calloc(VERIFY_DIFFS_MAX, sizeof(*d))) == NULL)
		return;
	d = &run->diffs[run->ndiffs];
	verify_now_text(at, sizeof(at));
	d->table = strdup(t->label);
	d->key = strdup(key);
	d->kind = strdup(kind);
	d->found_at = strdup(at);
	if (d->table && d->key && d->kind && d->found_at) {
		run->ndiffs++;
	} else {
		free(d->table);
		free(d->key);
		free(d->kind);
		free(d->found_at);
		memset(d, 0, sizeof(*d));
	}
}

void verify_add_pending(struct verify_run *run, struct verify_task *k)
{
	struct verify_pending *p;

	k->chunk->pending = true;
	if (run->npending >= VERIFY_PENDING_MAX) {
		run->pending_dropped++;
		return;
	}
	if (run->pending == NULL &&
	    (run->pending = calloc(VERIFY_PENDING_MAX, sizeof(*run->pending))) == NULL) {
		run->pending_dropped++;
		return;
	}
	p = &run->pending[run->npending++];
	p->t = k->t;
	p->ilo = k->ilo;
	p->ihi = k->ihi;
	p->lo.v = k->lo.v ? verify_values_dup(k->lo.v, k->t->nkey) : NULL;
	p->hi.v = k->hi.v ? verify_values_dup(k->hi.v, k->t->nkey) : NULL;
}

void verify_table_failed(struct verify_run *run, struct verify_table *t, const char *why)
{
	if (t->state == VT_FAILED)
		return;
	t->state = VT_FAILED;
	snprintf(t->why, sizeof(t->why), "%s", why);
	log_warning("verify %s: %s: %s", run->dbname, t->label, why);
}

/* A table whose ranges are all made and finished is done. */
static void table_maybe_done(struct verify_table *t)
{
	if (t->state == VT_RUNNING && t->generated && t->tasks == 0)
		t->state = VT_DONE;
}

/* ---- tasks ---- */

/* Remove a task from its list and from its worker. */
static void task_detach(struct verify_run *run, struct verify_task *k)
{
	if (k->queued) {
		list_remove(&k->node);
		k->queued = false;
	}
	if (k->pair >= 0 && k->pair < run->nworkers && run->workers[k->pair].task == k)
		run->workers[k->pair].task = NULL;
	k->pair = -1;
}

void verify_task_finished(struct verify_run *run, struct verify_task *k)
{
	struct verify_table *t = k->t;
	struct verify_chunk *c = k->chunk;

	task_detach(run, k);
	k->step = VS_DONE;
	if (k->first)
		c->rows = k->old_count;
	t->tasks--;
	if (--c->open == 0) {
		if (t->state != VT_FAILED && !run->stopping) {
			if (c->diff)
				t->chunks_mismatched++;
			else if (c->pending)
				t->chunks_pending++;
			else
				t->chunks_matched++;
			if (!c->pending || c->diff)
				t->rows_checked += c->rows;
			t->rows_seen += c->rows;
		}
		free(c);
	}
	verify_task_free(k);
	table_maybe_done(t);
	verify_schedule_soon(run);
}

void verify_task_next(struct verify_run *run, struct verify_task *k)
{
	task_detach(run, k);
	k->queued = true;
	if (k->wait_for > run->applied) {
		list_append(&run->waiting, &k->node);
		verify_wait_service(run);
	} else {
		k->wait_for = 0;
		list_append(&run->ready, &k->node);
	}
	verify_schedule_soon(run);
}

/* Drop every task (a stop, the end). */
void verify_tasks_drop(struct verify_run *run)
{
	for (int w = 0; w < run->nworkers; w++) {
		struct verify_task *k = run->workers[w].task;

		if (k)
			verify_task_finished(run, k);
	}
	while (!list_empty(&run->ready))
		verify_task_finished(run, list_entry(run->ready.next, struct verify_task, node));
	while (!list_empty(&run->waiting))
		verify_task_finished(run, list_entry(run->waiting.next, struct verify_task, node));
}

/* ---- queries on workers ---- */

static void query_cb(void *arg, const struct control_result *r)
{
	struct verify_query *q = arg;
	struct verify_run *run = q->run;
	struct verify_task *k = q->task;
	int w = q->worker;

	run->workers[w].outstanding--;
	q->task = NULL;
	if (k->t->state != VT_FAILED && !run->stopping)
		q->cb(run, k, q->side, r->ok ? r->res : NULL,
		      r->ok ? (r->res ? NULL : "no answer") : (r->error ? r->error : "failed"));
	if (run->workers[w].outstanding == 0)
		verify_worker_done(run, w);
}

bool verify_query(struct verify_run *run, int worker, int side, const char *sql,
		  void (*cb)(struct verify_run *run, struct verify_task *k, int side,
			     const PGresult *res, const char *error))
{
	struct verify_worker *wk = &run->workers[worker];
	struct verify_query *q = &wk->out[side];

	if (wk->task == NULL || q->task || q->table)
		return false; /* no task, or a query of this worker is out on that side */
	*q = (struct verify_query){run, wk->task, NULL, worker, side, cb};
	wk->outstanding++;
	if (!control_conn_query(wk->ctl[side], sql, VERIFY_QUERY_TIMEOUT_MS, query_cb, q)) {
		wk->outstanding--;
		q->task = NULL;
		return false;
	}
	return true;
}

void verify_worker_done(struct verify_run *run, int w)
{
	struct verify_task *k = run->workers[w].task;

	run->workers[w].task = NULL;
	/* a task whose step neither went on nor ended: its table failed meanwhile */
	if (k && !k->queued && k->step != VS_DONE) {
		k->pair = -1;
		verify_task_finished(run, k);
	}
	verify_schedule_soon(run);
}

/* ---- first-pass ranges ---- */

/*
 * A boundary query reads the old side's table (an index walk of up to
 * VERIFY_CHUNK_ROWS keys), so it runs on a worker like any range, and counts
 * against verify_jobs.
 */
static void bounds_take(struct verify_table *t, const struct control_result *r);

/* min and max of an integer key (or the next boundary of another key) are in. */
static void bounds_cb(void *arg, const struct control_result *r)
{
	struct verify_query *q = arg;
	struct verify_table *t = q->table;
	struct verify_run *run = t->run;
	int w = q->worker;

	q->table = NULL;
	run->workers[w].outstanding--;
	t->bounding = false;
	if (!run->stopping)
		bounds_take(t, r);
	if (run->workers[w].outstanding == 0)
		verify_worker_done(run, w);
}

static void bounds_take(struct verify_table *t, const struct control_result *r)
{
	struct verify_run *run = t->run;

	if (!r->ok || r->res == NULL) {
		verify_table_failed(run, t, r->error ? r->error : "no answer");
		t->generated = true;
		table_maybe_done(t);
		verify_schedule_soon(run);
		return;
	}
	if (t->kind == VK_INTEGER) {
		/* the first range starts at the type's minimum: rows only the new side has count */
		t->next_lo = t->type_min;
		t->max_key = t->type_min;
		t->step = VERIFY_CHUNK_ROWS;
		if (PQntuples(r->res) > 0 && !PQgetisnull(r->res, 0, 0)) {
			int64_t lo = strtoll(PQgetvalue(r->res, 0, 0), NULL, 10);
			int64_t hi = strtoll(PQgetvalue(r->res, 0, 1), NULL, 10);
			double per = t->estimate > 0
					     ? ((double)hi - (double)lo + 1) / (double)t->estimate
					     : 1.0;
			double step = per * VERIFY_CHUNK_ROWS;

			t->first_lo = lo;
			t->max_key = hi;
			t->step = step < 1 ? 1 : step > 4e18 ? INT64_MAX / 2 : (int64_t)step;
		} else {
			t->first_lo = t->type_min;
		}
		t->started = true;
	} else {
		/* VK_GENERAL: the next boundary, or none: the last range */
		struct verify_task *k = verify_task_new(t, NULL);

		if (k == NULL) {
			verify_table_failed(run, t, "out of memory");
		} else {
			char *vals[VERIFY_KEY_MAX];

			k->lo.v = t->cursor ? verify_values_dup(t->cursor, t->nkey) : NULL;
			if (PQntuples(r->res) > 0) {
				for (int j = 0; j < t->nkey; j++)
					vals[j] = PQgetvalue(r->res, 0, j);
				k->hi.v = verify_values_dup(vals, t->nkey);
				verify_values_free(t->cursor, t->nkey);
				t->cursor = verify_values_dup(vals, t->nkey);
			} else {
				t->generated = true;
			}
			verify_task_next(run, k);
		}
	}
	verify_schedule_soon(run);
}

/* The next integer range of t: from the type's minimum up to the old side's maximum, then on. */
static struct verify_task *next_integer(struct verify_table *t)
{
	struct verify_task *k = verify_task_new(t, NULL);
	__int128 hi;

	if (k == NULL)
		return NULL;
	k->ilo = t->next_lo;
	/* the first range also covers everything below the old side's minimum */
	hi = (t->next_lo == t->type_min ? (__int128)t->first_lo : (__int128)t->next_lo) + t->step -
	     1;
	if (hi >= t->max_key || hi >= t->type_max) {
		/* the last range: everything above the old side's maximum too */
		k->ihi = t->type_max;
		t->generated = true;
	} else {
		k->ihi = (int64_t)hi;
		t->next_lo = k->ihi + 1;
	}
	return k;
}

/* Send a boundary query of t on worker w's connection to the old side; false when it could not go. */
static bool bounds_query(struct verify_run *run, struct verify_table *t, int w, const char *sql)
{
	struct verify_worker *wk = &run->workers[w];
	struct verify_query *q = &wk->out[run->old_side];

	if (q->task || q->table)
		return false;
	*q = (struct verify_query){run, NULL, t, w, (int)run->old_side, NULL};
	wk->outstanding++;
	if (!control_conn_query(wk->ctl[run->old_side], sql, VERIFY_QUERY_TIMEOUT_MS, bounds_cb, q)) {
		wk->outstanding--;
		q->table = NULL;
		return false;
	}
	return true;
}

/*
 * Make the next first-pass task; false when every table has all its ranges
 * (or waits for one).  A table whose next boundary must be read first takes
 * worker w for that query (it is then busy).
 */
static bool generate(struct verify_run *run, int w)
{
	struct list_node *n;

	list_for_each(n, &run->tables) {
		struct verify_table *t = list_entry(n, struct verify_table, node);
		struct verify_task *k;
		struct pq_buf b;

		if (t->generated || t->bounding || t->state == VT_SKIPPED || t->state == VT_FAILED)
			continue;
		if (t->state == VT_QUEUED)
			t->state = VT_RUNNING;
		if (t->kind == VK_NONE) {
			k = verify_task_new(t, NULL);
			t->generated = true;
		} else if (t->kind == VK_GENERAL || !t->started) {
			pq_buf_init(&b);
			if (t->kind == VK_GENERAL)
				verify_sql_boundary(&b, t);
			else
				verify_sql_minmax(&b, t);
			t->bounding = !b.failed && bounds_query(run, t, w, (const char *)b.data);
			if (!t->bounding) {
				verify_table_failed(run, t, "out of memory");
				t->generated = true;
				table_maybe_done(t);
			}
			pq_buf_free(&b);
			return true;
		} else {
			k = next_integer(t);
		}
		if (k == NULL) {
			verify_table_failed(run, t, "out of memory");
			t->generated = true;
			table_maybe_done(t);
			return true;
		}
		verify_task_next(run, k);
		return true;
	}
	return false;
}

/* ---- the scheduler ---- */

/* Whether a worker has a query out (a boundary read holds no task). */
static bool busy_workers(const struct verify_run *run)
{
	for (int w = 0; w < run->nworkers; w++)
		if (run->workers[w].outstanding)
			return true;
	return false;
}

static void schedule(struct verify_run *run)
{
	if (!run->running || run->stopping)
		return;
	if (run->db->route != run->old_side) {
		verify_run_end(run, "stopped: the database switched sides");
		return;
	}
	for (int w = 0; w < run->nworkers; w++) {
		struct verify_worker *wk = &run->workers[w];
		struct verify_task *k;

		if (wk->task || wk->outstanding)
			continue;
		while (list_empty(&run->ready) && wk->outstanding == 0 &&
		       live_tasks(run) < TASKS_PER_WORKER * run->nworkers && generate(run, w))
			;
		if (wk->outstanding)
			continue; /* it reads a table's next boundary */
		if (list_empty(&run->ready))
			break;
		k = list_entry(run->ready.next, struct verify_task, node);
		list_remove(&k->node);
		k->queued = false;
		wk->task = k;
		verify_task_step(run, k, w);
		if (wk->outstanding == 0)
			verify_worker_done(run, w);
	}
	/* everything made, nothing running or waiting: the run is over */
	if (list_empty(&run->ready) && list_empty(&run->waiting) && run->coord_pending == 0 &&
	    live_tasks(run) == 0 && !busy_workers(run)) {
		struct list_node *n;

		list_for_each(n, &run->tables) {
			struct verify_table *t = list_entry(n, struct verify_table, node);

			if (!t->generated && (t->state == VT_QUEUED || t->state == VT_RUNNING))
				return;
		}
		verify_run_end(run, NULL);
	}
}

static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	schedule(arg);
}

void verify_schedule_soon(struct verify_run *run)
{
	struct timeval now = {0, 0};

	if (run->kick == NULL)
		run->kick = evtimer_new(rt.base, kick_cb, run);
	if (run->kick && run->running && !run->stopping)
		evtimer_add(run->kick, &now);
}

void verify_coord_query(struct verify_run *run, int side, const char *sql,
			void (*cb)(void *arg, const struct control_result *r), void *arg)
{
	run->coord_pending++;
	if (!control_conn_query(run->coord[side], sql, CONTROL_QUERY_TIMEOUT_MS, cb, arg)) {
		struct control_result r = {.ok = false, .error = "out of memory"};

		cb(arg, &r); /* counts itself out */
	}
}
