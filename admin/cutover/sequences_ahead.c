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

/* Run the query built in b on a side, as a query of the phase; b is freed. */
static bool query_built(struct cutover *co, enum route_side side, struct pq_buf *b, control_cb cb)
{
	bool ok;

	if (b->failed) {
		pq_buf_free(b);
		cutover_fail(co, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return false;
	}
	ok = cutover_query(co, side, (const char *)b->data, CONTROL_QUERY_TIMEOUT_MS, cb);
	pq_buf_free(b);
	return ok;
}

bool cutover_seq_values(struct cutover *co, bool moved_only, control_cb cb)
{
	struct seq_ahead *sa = co->seq_ahead;
	uint32_t *oids = calloc(sa->n, sizeof(*oids));
	long long *known = moved_only ? calloc(sa->n, sizeof(*known)) : NULL;
	bool *known_set = moved_only ? calloc(sa->n, sizeof(*known_set)) : NULL;
	struct pq_buf b;

	if (oids == NULL || (moved_only && (known == NULL || known_set == NULL))) {
		free(oids);
		free(known);
		free(known_set);
		cutover_fail(co, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return false;
	}
	for (size_t i = 0; i < sa->n; i++) {
		oids[i] = sa->e[i].oid;
		if (moved_only) {
			known[i] = sa->e[i].last;
			known_set[i] = sa->e[i].called;
		}
	}
	pq_buf_init(&b);
	seq_values_sql(&b, oids, known, known_set, sa->n);
	free(oids);
	free(known);
	free(known_set);
	return query_built(co, co->from, &b, cb);
}

struct seq_entry *cutover_seq_value(struct cutover *co, const PGresult *res, int i, long long *last,
				    bool *called)
{
	struct seq_entry *e = seq_value_row(co->seq_ahead, res, i, last, called);

	if (e == NULL)
		cutover_fail(co, SQLSTATE_INTERNAL_ERROR,
			     "could not read sequences on the %s: unexpected row \"%s\"",
			     route_side_name(co->from), PQgetvalue(res, i, SEQ_VAL_OID));
	return e;
}

bool cutover_seq_apply(struct cutover *co, const struct seq_apply_item *items, size_t n,
		       control_cb cb)
{
	struct pq_buf b;

	pq_buf_init(&b);
	seq_apply_sql(&b, items, n, cutover_cfg(co)->d.sequence_margin);
	return query_built(co, co->to, &b, cb);
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

	if (!cutover_answer(co, r, CO_SEQ_AHEAD, "set sequences", co->to))
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

	if (!cutover_answer(co, r, CO_SEQ_AHEAD, "read sequences", co->from))
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
		long long last;
		bool called;
		struct seq_entry *e = cutover_seq_value(co, r->res, i, &last, &called);

		if (e == NULL) {
			free(seen);
			free(items);
			return; /* the switch failed */
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
	int rows;

	if (!cutover_answer(co, r, CO_SEQ_AHEAD, "read sequences", co->from))
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
	if (!cutover_seq_values(co, false, ahead_values_cb))
		return; /* the switch failed */
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
