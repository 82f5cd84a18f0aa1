/*
 * sequences_ahead.c - the sequence pre-advance, before the pause: every
 * sequence sequence_sync selects is read on the side switched from and set
 * on the side switched to at or beyond its next value (plus
 * sequence_margin), never backwards.  Traffic still runs meanwhile, so
 * sequences keep moving; the sync inside the pause (sequences.c) reads them
 * again, keeps only those that moved since (seqstate.h), and sets those.
 * The pause then pays for what moved during the switch, not for every
 * sequence of the database (5 000 sequences took 5.5 s inside the pause
 * when all were set there).
 *
 * Three round trips (seqsql.h): the old side's catalog, their values, one
 * DO block on the new side.  The time counts in prepare_ms.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/cutover/engine.h"
#include "admin/cutover/seqread.h"
#include "admin/cutover/seqsql.h"
#include "admin/cutover/seqstate.h"
#include "protocol/pq_build.h"
#include "protocol/sqlstate.h"
#include "proxy/core/config.h"
#include "proxy/core/log.h"
#include "proxy/core/route.h"
#include "proxy/database.h"

static int entry_cmp(const void *key, const void *elem)
{
	uint32_t k = *(const uint32_t *)key, o = ((const struct seq_entry *)elem)->oid;

	return k < o ? -1 : k > o;
}

struct seq_entry *seq_ahead_find(struct seq_ahead *sa, uint32_t oid)
{
	return sa && sa->n ? bsearch(&oid, sa->e, sa->n, sizeof(sa->e[0]), entry_cmp) : NULL;
}

void seq_ahead_free(struct seq_ahead *sa)
{
	if (sa == NULL)
		return;
	for (size_t i = 0; i < sa->n; i++)
		free(sa->e[i].qname);
	free(sa->e);
	free(sa);
}

bool cutover_seq_parse_row(const PGresult *res, int i, uint32_t *oid, long long *last, bool *called)
{
	long long o;

	if (!seq_parse_int(PQgetvalue(res, i, SEQ_VAL_OID), &o) || o < 0 || o > UINT32_MAX ||
	    !seq_parse_int(PQgetvalue(res, i, SEQ_VAL_LAST), last))
		return false;
	*oid = (uint32_t)o;
	*called = strcmp(PQgetvalue(res, i, SEQ_VAL_CALLED), "t") == 0;
	return true;
}

bool cutover_seq_apply(struct cutover *co, const struct seq_apply_item *items, size_t n,
		       control_cb cb)
{
	struct pq_buf b;
	bool ok;

	pq_buf_init(&b);
	seq_apply_sql(&b, items, n, cutover_cfg(co)->d.sequence_margin);
	if (b.failed) {
		pq_buf_free(&b);
		cutover_fail(co, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return false;
	}
	ok = cutover_query(co, co->to, (const char *)b.data, CONTROL_QUERY_TIMEOUT_MS, cb);
	pq_buf_free(&b);
	return ok;
}

/* An answer of the pre-advance: false when the phase moved on or the query failed. */
static bool ahead_answer(struct cutover *co, const struct control_result *r, const char *verb,
			 enum route_side side)
{
	co->pending--;
	if (co->phase != CO_SEQ_AHEAD)
		return false;
	if (!r->ok) {
		cutover_fail(co, r->sqlstate, "could not %s sequences on the %s: %s", verb,
			     route_side_name(side), r->error);
		return false;
	}
	return true;
}

static void ahead_done(struct cutover *co)
{
	int64_t ms = cutover_ms_since(co->t_phase);

	co->rec.ms_prepare += ms;
	log_debug("switch %s: %zu sequences set ahead on the %s in %lld ms", co->db->name,
		  co->seq_ahead ? co->seq_ahead->n : 0, route_side_name(co->to), (long long)ms);
	cutover_phase_done(co);
}

static void ahead_set_cb(void *arg, const struct control_result *r)
{
	struct cutover *co = arg;

	if (!ahead_answer(co, r, "set", co->to))
		return;
	ahead_done(co);
}

/* The values of every selected sequence: remembered, then set on the new side. */
static void ahead_values_cb(void *arg, const struct control_result *r)
{
	struct cutover *co = arg;
	struct seq_ahead *sa = co->seq_ahead;
	struct seq_apply_item *items;
	bool *seen;

	if (!ahead_answer(co, r, "read", co->from))
		return;
	seen = calloc(sa->n, sizeof(*seen));
	items = calloc(sa->n, sizeof(*items));
	if (seen == NULL || items == NULL) {
		free(seen);
		free(items);
		cutover_fail(co, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	for (int i = 0; r->res && i < PQntuples(r->res); i++) {
		uint32_t oid;
		long long last;
		bool called;
		struct seq_entry *e;

		if (!cutover_seq_parse_row(r->res, i, &oid, &last, &called) ||
		    (e = seq_ahead_find(sa, oid)) == NULL) {
			free(seen);
			free(items);
			cutover_fail(co, SQLSTATE_INTERNAL_ERROR,
				     "could not read sequences on the %s: unexpected row \"%s\"",
				     route_side_name(co->from), PQgetvalue(r->res, i, SEQ_VAL_OID));
			return;
		}
		e->last = last;
		e->called = called;
		seen[e - sa->e] = true;
	}
	for (size_t i = 0; i < sa->n; i++) {
		if (!seen[i]) {
			cutover_fail(co, SQLSTATE_INTERNAL_ERROR,
				     "could not read sequence %s on the %s: it went away",
				     sa->e[i].qname, route_side_name(co->from));
			free(seen);
			free(items);
			return;
		}
		items[i] = (struct seq_apply_item){sa->e[i].qname, sa->e[i].last, sa->e[i].called,
						   sa->e[i].inc};
	}
	free(seen);
	if (!cutover_seq_apply(co, items, sa->n, ahead_set_cb)) {
		free(items);
		return; /* the switch failed */
	}
	free(items);
}

/* The old side's sequences from its catalog: keep the selected ones, then read them. */
static void ahead_catalog_cb(void *arg, const struct control_result *r)
{
	struct cutover *co = arg;
	struct seq_ahead *sa;
	uint32_t *oids;
	struct pq_buf b;
	int rows;

	if (!ahead_answer(co, r, "read", co->from))
		return;
	rows = r->res ? PQntuples(r->res) : 0;
	sa = calloc(1, sizeof(*sa));
	if (sa == NULL || (sa->e = calloc(rows ? (size_t)rows : 1, sizeof(*sa->e))) == NULL) {
		free(sa);
		cutover_fail(co, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	seq_ahead_free(co->seq_ahead);
	co->seq_ahead = sa;
	for (int i = 0; i < rows; i++) {
		struct seq_entry *e = &sa->e[sa->n];
		long long oid;

		if (!cutover_seq_selected(cutover_cfg(co), PQgetvalue(r->res, i, SEQ_CAT_NAME)))
			continue;
		if (!seq_parse_int(PQgetvalue(r->res, i, SEQ_CAT_OID), &oid) ||
		    !seq_parse_int(PQgetvalue(r->res, i, SEQ_CAT_INCREMENT), &e->inc)) {
			cutover_fail(co, SQLSTATE_INTERNAL_ERROR,
				     "could not read sequence %s: unexpected catalog row",
				     PQgetvalue(r->res, i, SEQ_CAT_QNAME));
			return;
		}
		e->oid = (uint32_t)oid;
		if ((e->qname = strdup(PQgetvalue(r->res, i, SEQ_CAT_QNAME))) == NULL) {
			cutover_fail(co, SQLSTATE_OUT_OF_MEMORY, "out of memory");
			return;
		}
		sa->n++; /* the catalog answers in oid order: sa->e stays ordered */
	}
	co->rec.sequences_synced = (int)sa->n;
	if (sa->n == 0) {
		ahead_done(co);
		return;
	}
	oids = calloc(sa->n, sizeof(*oids));
	if (oids == NULL) {
		cutover_fail(co, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	for (size_t i = 0; i < sa->n; i++)
		oids[i] = sa->e[i].oid;
	pq_buf_init(&b);
	seq_values_sql(&b, oids, NULL, NULL, sa->n);
	free(oids);
	if (b.failed) {
		pq_buf_free(&b);
		cutover_fail(co, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	if (!cutover_query(co, co->from, (const char *)b.data, CONTROL_QUERY_TIMEOUT_MS,
			   ahead_values_cb)) {
		pq_buf_free(&b);
		return; /* the switch failed */
	}
	pq_buf_free(&b);
}

void cutover_seq_ahead_enter(struct cutover *co)
{
	if (strcmp(cutover_cfg(co)->d.sequence_sync, "none") == 0) {
		cutover_phase_done(co);
		return;
	}
	if (!cutover_query(co, co->from, SEQ_CATALOG_SQL, CONTROL_QUERY_TIMEOUT_MS,
			   ahead_catalog_cb))
		return; /* the switch failed */
}
