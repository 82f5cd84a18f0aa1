/*
 * verify_pause.c - switch_verify: inside the pause of a switch (writes
 * held, the old side fenced, lag zero: the one moment both sides must hold
 * the same rows), the ranges the last VERIFY could not settle are compared
 * once more, within verify_budget.
 *
 * The ranges go in batches (one query per side, UNION ALL of each range's
 * count and hash, the two sides at once on the switch's own control
 * connections).  Each batch runs with statement_timeout set to what is
 * left of the budget, so the servers themselves stop at the budget; the
 * session settings VERIFY's text depends on are set for the batch's
 * transaction only (set_config(..., true)), leaving the connections as the
 * next phases expect them.  A range that differs fails the switch (the
 * rollback resumes on the old side).  Ranges left unchecked (the budget ran
 * out, no VERIFY ran, or it did not finish) are reported, and
 * switch_verify_incomplete says whether the switch goes on or aborts.
 */
#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/cutover/engine.h"
#include "admin/cutover/verify_int.h"
#include "protocol/pq_build.h"
#include "protocol/sqlstate.h"
#include "proxy/core/config.h"
#include "proxy/core/log.h"
#include "proxy/database.h"
#include "proxy/runtime.h"

/* Ranges per batch. */
#define PAUSE_BATCH 64

/* ---- the plan: the pending ranges of the last VERIFY, as batches ---- */

static void put(struct pq_buf *b, const char *s)
{
	pq_put_bytes(b, s, strlen(s));
}

/* A name for range i of the run: "public.t (1..25000)". */
static char *range_label(const struct verify_pending *p)
{
	const struct verify_table *t = p->t;
	char buf[400];

	if (t->kind == VK_NONE) {
		snprintf(buf, sizeof(buf), "%s (the whole table)", t->label);
	} else if (t->kind == VK_INTEGER) {
		snprintf(buf, sizeof(buf), "%s (%s %" PRId64 " to %" PRId64 ")", t->label,
			 t->cols[t->key[0]].name, p->ilo, p->ihi);
	} else {
		char *lo = p->lo.v ? verify_key_text(t, p->lo.v) : NULL;
		char *hi = p->hi.v ? verify_key_text(t, p->hi.v) : NULL;

		snprintf(buf, sizeof(buf), "%s (keys above %s up to %s)", t->label, lo ? lo : "-",
			 hi ? hi : "+");
		free(lo);
		free(hi);
	}
	return strdup(buf);
}

bool verify_pause_plan(const struct database *db, enum route_side from, int max_ranges,
		       struct verify_pause_plan *out)
{
	const struct verify_run *run = verify_last_run(db);
	struct list_node *n;
	struct pq_buf b;

	memset(out, 0, sizeof(*out));
	if (run == NULL || run->old_side != from || run->running)
		return false;
	out->complete = run->pending_dropped == 0;
	list_for_each(n, &run->tables) {
		const struct verify_table *t = list_entry(n, struct verify_table, node);

		if (t->state == VT_STOPPED || t->state == VT_FAILED)
			out->complete = false;
	}
	out->nranges = run->npending;
	out->label = calloc(run->npending ? (size_t)run->npending : 1, sizeof(char *));
	out->nqueries = (run->npending + max_ranges - 1) / max_ranges;
	out->sql = calloc(out->nqueries ? (size_t)out->nqueries : 1, sizeof(char *));
	if (out->label == NULL || out->sql == NULL) {
		verify_pause_free(out);
		return false;
	}
	pq_buf_init(&b);
	for (int q = 0; q < out->nqueries; q++) {
		pq_buf_reset(&b);
		for (int i = q * max_ranges; i < run->npending && i < (q + 1) * max_ranges; i++) {
			const struct verify_pending *p = &run->pending[i];
			struct verify_task k;
			char num[24];

			memset(&k, 0, sizeof(k));
			k.ilo = p->ilo;
			k.ihi = p->ihi;
			k.lo = p->lo;
			k.hi = p->hi;
			out->label[i] = range_label(p);
			if (i > q * max_ranges)
				put(&b, " UNION ALL ");
			snprintf(num, sizeof(num), "%d", i);
			put(&b, "SELECT ");
			put(&b, num);
			put(&b, ", count(*)::text, COALESCE(sum(");
			put(&b, p->t->rowhash);
			put(&b, "), 0)::text FROM ");
			put(&b, p->t->qname);
			put(&b, " t WHERE ");
			verify_sql_range(&b, p->t, &k);
		}
		pq_put_u8(&b, 0);
		out->sql[q] = b.failed ? NULL : strdup((const char *)b.data);
		if (out->sql[q] == NULL) {
			pq_buf_free(&b);
			verify_pause_free(out);
			return false;
		}
	}
	pq_buf_free(&b);
	return true;
}

void verify_pause_free(struct verify_pause_plan *p)
{
	for (int i = 0; p->label && i < p->nranges; i++)
		free(p->label[i]);
	for (int i = 0; p->sql && i < p->nqueries; i++)
		free(p->sql[i]);
	free(p->label);
	free(p->sql);
	memset(p, 0, sizeof(*p));
}

/* ---- the phase ---- */

/* The phase's state, hung on the switch (co->vp). */
struct verify_pause {
	struct verify_pause_plan plan;
	int batch;            /* the batch running */
	PGresult *res[2];     /* its answers, by side */
	bool failed;          /* a side's query failed: unchecked from here on */
	bool no_plan;         /* no finished VERIFY to take the ranges from */
	char why[300];        /* why the rest is unchecked */
	uint64_t t_start;     /* us */
	struct event *budget; /* fires at verify_budget */
	int checked;          /* ranges compared */
	int differing;
	char first_diff[400];
};

static void pause_done(struct cutover *co);

void cutover_verify_free(struct cutover *co)
{
	struct verify_pause *vp = co->vp;

	if (vp == NULL)
		return;
	verify_pause_free(&vp->plan);
	PQclear(vp->res[0]);
	PQclear(vp->res[1]);
	if (vp->budget)
		event_free(vp->budget);
	free(vp);
	co->vp = NULL;
}

/* Milliseconds of the budget left. */
static int64_t budget_left(const struct cutover *co)
{
	int64_t spent = (int64_t)((rt_now_us() - co->vp->t_start) / 1000);

	return cutover_cfg(co)->d.verify_budget_ms - spent;
}

/* Both sides answered the batch: compare range by range. */
static void compare_batch(struct cutover *co)
{
	struct verify_pause *vp = co->vp;
	const PGresult *o = vp->res[co->from], *n = vp->res[co->to];

	for (int i = 0; o && n && i < PQntuples(o); i++) {
		int id = atoi(PQgetvalue(o, i, 0));
		bool same = false;

		for (int j = 0; j < PQntuples(n); j++) {
			if (atoi(PQgetvalue(n, j, 0)) != id)
				continue;
			same = strcmp(PQgetvalue(o, i, 1), PQgetvalue(n, j, 1)) == 0 &&
			       strcmp(PQgetvalue(o, i, 2), PQgetvalue(n, j, 2)) == 0;
			break;
		}
		vp->checked++;
		if (!same && id >= 0 && id < vp->plan.nranges && vp->differing++ == 0) {
			const char *other = "none";

			for (int j = 0; j < PQntuples(n); j++)
				if (atoi(PQgetvalue(n, j, 0)) == id)
					other = PQgetvalue(n, j, 1);
			snprintf(vp->first_diff, sizeof(vp->first_diff),
				 "%s: %s rows on the %s, %s on the %s%s", vp->plan.label[id],
				 PQgetvalue(o, i, 1), route_side_name(co->from), other,
				 route_side_name(co->to),
				 strcmp(PQgetvalue(o, i, 1), other) == 0 ? " (with other contents)"
									 : "");
		}
	}
}

static void run_batch(struct cutover *co);

static void batch_cb(void *arg, const struct control_result *r, enum route_side side)
{
	struct cutover *co = arg;
	struct verify_pause *vp = co->vp;

	co->pending--;
	if (co->phase != CO_VERIFY || vp == NULL)
		return;
	if (!r->ok || r->res == NULL) {
		/* the servers' statement_timeout is the budget itself */
		if (!vp->failed && !r->ok && strcmp(r->sqlstate, SQLSTATE_QUERY_CANCELED) == 0)
			snprintf(vp->why, sizeof(vp->why), "verify_budget (%" PRId64 " ms) ran out",
				 cutover_cfg(co)->d.verify_budget_ms);
		else if (!vp->failed)
			snprintf(vp->why, sizeof(vp->why), "%s on the %s",
				 r->ok ? "no answer" : r->error, route_side_name(side));
		vp->failed = true;
	} else {
		vp->res[side] = PQcopyResult(r->res, PG_COPYRES_ATTRS | PG_COPYRES_TUPLES);
	}
	if (co->pending > 0)
		return;
	if (!vp->failed)
		compare_batch(co);
	PQclear(vp->res[0]);
	PQclear(vp->res[1]);
	vp->res[0] = vp->res[1] = NULL;
	if (vp->failed || vp->differing) {
		pause_done(co);
		return;
	}
	vp->batch++;
	run_batch(co);
}

static void batch_source_cb(void *arg, const struct control_result *r)
{
	batch_cb(arg, r, SIDE_SOURCE);
}

static void batch_target_cb(void *arg, const struct control_result *r)
{
	batch_cb(arg, r, SIDE_TARGET);
}

static void run_batch(struct cutover *co)
{
	struct verify_pause *vp = co->vp;
	int64_t left = budget_left(co);
	struct pq_buf b;
	char head[600];

	if (vp->batch >= vp->plan.nqueries) {
		pause_done(co);
		return;
	}
	if (left <= 0) {
		snprintf(vp->why, sizeof(vp->why), "verify_budget (%" PRId64 " ms) ran out",
			 cutover_cfg(co)->d.verify_budget_ms);
		vp->failed = true;
		pause_done(co);
		return;
	}
	/* the batch's own settings, for its transaction only */
	snprintf(head, sizeof(head),
		 "SELECT pg_catalog.set_config('TimeZone', 'UTC', true),"
		 " pg_catalog.set_config('DateStyle', 'ISO, YMD', true),"
		 " pg_catalog.set_config('IntervalStyle', 'postgres', true),"
		 " pg_catalog.set_config('extra_float_digits', '3', true),"
		 " pg_catalog.set_config('bytea_output', 'hex', true),"
		 " pg_catalog.set_config('lc_monetary', 'C', true),"
		 " pg_catalog.set_config('search_path', '', true),"
		 " pg_catalog.set_config('statement_timeout', '%" PRId64 "', true); ",
		 left);
	pq_buf_init(&b);
	put(&b, head);
	put(&b, vp->plan.sql[vp->batch]);
	pq_put_u8(&b, 0);
	if (b.failed ||
	    !cutover_query(co, co->from, (const char *)b.data, left + 1000,
			   co->from == SIDE_SOURCE ? batch_source_cb : batch_target_cb) ||
	    !cutover_query(co, co->to, (const char *)b.data, left + 1000,
			   co->to == SIDE_SOURCE ? batch_source_cb : batch_target_cb)) {
		pq_buf_free(&b);
		return; /* out of memory: the switch has failed */
	}
	pq_buf_free(&b);
}

/* The budget is gone with queries out: stop waiting for them. */
static void budget_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cutover *co = arg;

	(void)fd;
	(void)what;
	if (co->phase != CO_VERIFY || co->vp == NULL || co->pending == 0)
		return;
	/* their answers would hold up the next phases' queries: drop them */
	for (int side = 0; side < 2; side++)
		control_conn_reset(co->ctl[side]);
	co->pending = 0;
	snprintf(co->vp->why, sizeof(co->vp->why), "verify_budget (%" PRId64 " ms) ran out",
		 cutover_cfg(co)->d.verify_budget_ms);
	co->vp->failed = true;
	pause_done(co);
}

/* The end of the phase: a difference fails the switch; unchecked ranges as the setting says. */
static void pause_done(struct cutover *co)
{
	struct verify_pause *vp = co->vp;
	const struct db_config *dc = cutover_cfg(co);
	int unchecked = vp->plan.nranges - vp->checked;
	/* part of the data the last VERIFY did not cover (said once: why says it with no plan) */
	bool partial = !vp->plan.complete && !vp->no_plan;

	co->rec.ms_verify = cutover_ms_since(vp->t_start);
	if (vp->budget)
		evtimer_del(vp->budget);
	if (vp->differing) {
		cutover_fail(co, SQLSTATE_OBJECT_NOT_IN_PREREQUISITE_STATE,
			     "switch_verify: %d of the ranges the last VERIFY left pending differ between the sides: %s",
			     vp->differing, vp->first_diff);
		return;
	}
	if (unchecked > 0 || !vp->plan.complete || vp->no_plan) {
		log_warning("switch %s: switch_verify: %d of %d ranges re-checked in %" PRId64
			    " ms, %d left unchecked%s%s%s",
			    co->db->name, vp->checked, vp->plan.nranges, co->rec.ms_verify,
			    unchecked, partial ? " (the last VERIFY did not cover every table)" : "",
			    vp->why[0] ? ": " : "", vp->why);
		if (dc->d.switch_verify_abort) {
			cutover_fail(co, SQLSTATE_QUERY_CANCELED,
				     "switch_verify: %d of %d ranges left unchecked%s%s%s (switch_verify_incomplete = abort)",
				     unchecked, vp->plan.nranges,
				     partial ? ", and the last VERIFY did not cover every table"
					     : "",
				     vp->why[0] ? ": " : "", vp->why);
			return;
		}
	} else {
		log_info("switch %s: switch_verify: %d ranges re-checked in %" PRId64
			 " ms, all alike",
			 co->db->name, vp->checked, co->rec.ms_verify);
	}
	cutover_phase_done(co);
}

void cutover_verify_enter(struct cutover *co)
{
	const struct db_config *dc = cutover_cfg(co);
	struct verify_pause *vp;
	struct timeval tv;

	if (!dc->d.switch_verify || co->dry_run) {
		cutover_phase_done(co);
		return;
	}
	vp = co->vp = calloc(1, sizeof(*vp));
	if (vp == NULL) {
		cutover_fail(co, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	vp->t_start = rt_now_us();
	if (!verify_pause_plan(co->db, co->from, PAUSE_BATCH, &vp->plan)) {
		snprintf(vp->why, sizeof(vp->why), "no finished VERIFY of %s from its %s",
			 co->db->name, route_side_name(co->from));
		vp->failed = true;
		vp->no_plan = true;
		pause_done(co);
		return;
	}
	vp->budget = evtimer_new(rt.base, budget_cb, co);
	if (vp->budget == NULL) {
		cutover_fail(co, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	tv.tv_sec = dc->d.verify_budget_ms / 1000;
	tv.tv_usec = (dc->d.verify_budget_ms % 1000) * 1000;
	evtimer_add(vp->budget, &tv);
	run_batch(co);
}
