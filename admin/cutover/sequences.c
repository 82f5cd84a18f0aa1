/*
 * sequences.c - the sequence sync inside the pause: logical replication
 * does not carry sequences, so before the flip every sequence sequence_sync
 * names is set on the side switched to at or beyond its next value on the
 * side switched from (plus sequence_margin), never backwards.  Every one of
 * them was already set so before the pause (sequences_ahead.c); here the
 * old side tells which moved since (one query, seqsql.h), and only those are
 * set again (one DO block): the pause grows with what moved during the
 * switch, not with the number of sequences.
 */
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/cutover/engine.h"
#include "admin/cutover/seqread.h"
#include "admin/cutover/seqsql.h"
#include "admin/cutover/seqstate.h"
#include "proxy/core/log.h"
#include "protocol/pq.h"
#include "protocol/pq_build.h"
#include "protocol/sqlstate.h"
#include "proxy/core/config.h"
#include "proxy/core/route.h"
#include "proxy/database.h"

/* Whether sequence_sync names this sequence. */
bool cutover_seq_selected(const struct db_config *dc, const char *name)
{
	const char *list = dc->d.sequence_sync;
	size_t n = strlen(name);

	if (strcmp(list, "all") == 0)
		return true;
	if (strcmp(list, "none") == 0)
		return false;
	for (const char *p = list; *p;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);

		while (len > 0 && *p == ' ') {
			p++;
			len--;
		}
		while (len > 0 && p[len - 1] == ' ')
			len--;
		if (len == n && strncmp(p, name, n) == 0)
			return true;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	return false;
}

/*
 * An answer of a sequence-sync query: false when the phase has moved on
 * (an abort, a deadline) or the query failed, which fails the switch.
 */
static bool seq_answer(struct cutover *co, const struct control_result *r, const char *verb,
		       enum route_side side)
{
	co->pending--;
	if (co->phase != CO_SYNC_SEQUENCES)
		return false;
	if (!r->ok) {
		cutover_fail(co, r->sqlstate, "could not %s sequences on the %s: %s", verb,
			     route_side_name(side), r->error);
		return false;
	}
	return true;
}

static void seq_done(struct cutover *co, size_t moved)
{
	co->rec.ms_sequences = cutover_ms_since(co->t_phase);
	log_debug("switch %s: %zu of %zu sequences moved since they were set ahead (%lld ms)",
		  co->db->name, moved, co->seq_ahead ? co->seq_ahead->n : 0,
		  (long long)co->rec.ms_sequences);
	cutover_phase_done(co);
}

static void seq_set_cb(void *arg, const struct control_result *r)
{
	struct cutover *co = arg;

	if (!seq_answer(co, r, "set", co->to))
		return;
	seq_done(co, co->seq_moved);
}

/*
 * The sequences that answered: those whose values differ from the ones read
 * before the pause (every one that is_called false now answers, unchanged
 * or not) are set on the new side, in one DO block.
 */
static void seq_delta_cb(void *arg, const struct control_result *r)
{
	struct cutover *co = arg;
	struct seq_ahead *sa = co->seq_ahead;
	struct seq_apply_item *items;
	size_t n = 0;
	int rows;

	if (!seq_answer(co, r, "read", co->from))
		return;
	rows = r->res ? PQntuples(r->res) : 0;
	items = calloc(rows ? (size_t)rows : 1, sizeof(*items));
	if (items == NULL) {
		cutover_fail(co, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	for (int i = 0; i < rows; i++) {
		uint32_t oid;
		long long last;
		bool called;
		struct seq_entry *e;

		if (!cutover_seq_parse_row(r->res, i, &oid, &last, &called) ||
		    (e = seq_ahead_find(sa, oid)) == NULL) {
			free(items);
			cutover_fail(co, SQLSTATE_INTERNAL_ERROR,
				     "could not read sequences on the %s: unexpected row \"%s\"",
				     route_side_name(co->from), PQgetvalue(r->res, i, SEQ_VAL_OID));
			return;
		}
		if (e->last == last && e->called == called)
			continue; /* set ahead with these values already */
		e->last = last;
		e->called = called;
		items[n++] = (struct seq_apply_item){e->qname, last, called, e->inc};
	}
	co->seq_moved = n;
	if (n == 0) {
		free(items);
		seq_done(co, 0);
		return;
	}
	if (!cutover_seq_apply(co, items, n, seq_set_cb)) {
		free(items);
		return; /* the switch failed */
	}
	free(items);
}

void cutover_sequences_enter(struct cutover *co)
{
	struct seq_ahead *sa = co->seq_ahead;
	uint32_t *oids;
	long long *known;
	bool *known_set;
	struct pq_buf b;

	co->seq_moved = 0;
	if (strcmp(cutover_cfg(co)->d.sequence_sync, "none") == 0 || sa == NULL || sa->n == 0) {
		seq_done(co, 0);
		return;
	}
	oids = calloc(sa->n, sizeof(*oids));
	known = calloc(sa->n, sizeof(*known));
	known_set = calloc(sa->n, sizeof(*known_set));
	if (oids == NULL || known == NULL || known_set == NULL) {
		free(oids);
		free(known);
		free(known_set);
		cutover_fail(co, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	for (size_t i = 0; i < sa->n; i++) {
		oids[i] = sa->e[i].oid;
		known[i] = sa->e[i].last;
		known_set[i] = sa->e[i].called;
	}
	pq_buf_init(&b);
	seq_values_sql(&b, oids, known, known_set, sa->n);
	free(oids);
	free(known);
	free(known_set);
	if (b.failed) {
		pq_buf_free(&b);
		cutover_fail(co, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	if (!cutover_query(co, co->from, (const char *)b.data, CONTROL_QUERY_TIMEOUT_MS,
			   seq_delta_cb)) {
		pq_buf_free(&b);
		return; /* the switch failed */
	}
	pq_buf_free(&b);
}
