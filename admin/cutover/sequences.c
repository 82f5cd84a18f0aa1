/*
 * sequences.c - the sequence sync: logical replication does not carry
 * sequences, so before the flip every sequence sequence_sync names is set on
 * the side switched to at or beyond its next value on the side switched
 * from (plus sequence_margin), never backwards.  Read in two steps
 * (seqread.h), set in one transaction.
 */
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/cutover/engine.h"
#include "admin/cutover/seqread.h"
#include "protocol/pq.h"
#include "protocol/pq_build.h"
#include "protocol/sqlstate.h"
#include "proxy/core/config.h"
#include "proxy/core/route.h"

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

static void seq_set_cb(void *arg, const struct control_result *r)
{
	struct cutover *co = arg;

	if (!seq_answer(co, r, "set", co->to))
		return;
	co->rec.ms_sequences = cutover_ms_since(co->t_phase);
	cutover_phase_done(co);
}

/*
 * One statement of the batch run on the side switched to: set sequence
 * 'qname' (already quoted by quote_ident) so that the next value it hands out
 * is max(its own next value, the other side's next value + sequence_margin),
 * min(...) and - margin for a descending sequence; never backwards.
 *
 * "Next value" depends on is_called: after nextval() or setval(v) it is
 * last_value + increment; after ALTER SEQUENCE ... RESTART [WITH v] or
 * setval(v, false) (is_called false) it is last_value itself.  The other
 * side's next value arrives as (last, called, inc); the side's own is read by
 * the statement from the sequence relation, together with its bounds from
 * pg_sequence.  Arithmetic is in numeric, so a sequence at its bound does not
 * overflow; a result past the bound sets the sequence exhausted (is_called at
 * its bound), as it is on the other side.  The WHERE leaves a sequence that
 * is already far enough untouched (is_called and last_value included).  The
 * sequence is named by its tableoid, so no name is pasted into a literal.
 */
static void seq_append_set(struct pq_buf *sql, const char *qname, long long last, bool called,
			   long long inc, int64_t margin)
{
	char other[80];
	char stmt[1600];
	int n;

	/* the other side's next value, plus the margin in the sequence's direction */
	if (called)
		snprintf(other, sizeof(other), "(%lld::numeric + %lld)", last, inc);
	else
		snprintf(other, sizeof(other), "%lld::numeric", last);
	n = snprintf(stmt, sizeof(stmt),
		     "SELECT pg_catalog.setval(w.seq,"
		     " CASE WHEN w.n > w.mx THEN w.mx WHEN w.n < w.mn THEN w.mn"
		     " WHEN w.n - w.inc BETWEEN w.mn AND w.mx THEN w.n - w.inc ELSE w.n END::bigint,"
		     " w.n > w.mx OR w.n < w.mn OR w.n - w.inc BETWEEN w.mn AND w.mx)"
		     " FROM (SELECT v.seq, v.nxt, v.inc, v.mn, v.mx,"
		     " CASE WHEN v.inc > 0 THEN GREATEST(v.nxt, %s + %" PRId64 ")"
		     " ELSE LEAST(v.nxt, %s - %" PRId64 ") END AS n"
		     " FROM (SELECT t.tableoid::pg_catalog.regclass AS seq, p.seqincrement::numeric AS inc,"
		     " p.seqmin::numeric AS mn, p.seqmax::numeric AS mx,"
		     " CASE WHEN t.is_called THEN t.last_value::numeric + p.seqincrement"
		     " ELSE t.last_value::numeric END AS nxt"
		     " FROM %s t JOIN pg_catalog.pg_sequence p ON p.seqrelid = t.tableoid) v) w"
		     " WHERE w.n <> w.nxt;",
		     other, margin, other, margin, qname);
	if (n > 0 && n < (int)sizeof(stmt))
		pq_put_bytes(sql, stmt, (size_t)n);
	else
		sql->failed = true;
}

/* Sequence sync, last step: the batch of seq_append_set() statements, one transaction. */
static void seq_send_batch(struct cutover *co)
{
	if (co->seq_sql.len == 0) {
		co->rec.ms_sequences = cutover_ms_since(co->t_phase);
		cutover_phase_done(co);
		return;
	}
	pq_put_u8(&co->seq_sql, 0);
	if (co->seq_sql.failed) {
		cutover_fail(co, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	if (!cutover_query(co, co->to, (const char *)co->seq_sql.data, CONTROL_QUERY_TIMEOUT_MS,
			   seq_set_cb))
		return; /* the switch failed */
}

/* Rows of the sequence relations read by step 2 (SEQ_RAW_* columns). */
static void seq_raw_cb(void *arg, const struct control_result *r)
{
	struct cutover *co = arg;

	if (!seq_answer(co, r, "read", co->from))
		return;
	for (int i = 0; r->res && i < PQntuples(r->res); i++) {
		long long last, inc;

		if (!seq_parse_int(PQgetvalue(r->res, i, SEQ_RAW_LAST), &last) ||
		    !seq_parse_int(PQgetvalue(r->res, i, SEQ_RAW_INCREMENT), &inc)) {
			cutover_fail(co, SQLSTATE_INTERNAL_ERROR,
				     "could not read sequence %s: unexpected value \"%s\"",
				     PQgetvalue(r->res, i, SEQ_RAW_QNAME),
				     PQgetvalue(r->res, i, SEQ_RAW_LAST));
			return;
		}
		seq_append_set(&co->seq_sql, PQgetvalue(r->res, i, SEQ_RAW_QNAME), last,
			       strcmp(PQgetvalue(r->res, i, SEQ_RAW_CALLED), "t") == 0, inc,
			       cutover_cfg(co)->d.sequence_margin);
	}
	seq_send_batch(co);
}

/*
 * Sequence sync, step 1: SEQ_LIST_SQL on the side switched from.  A sequence
 * it shows with a NULL last_value still has a next value (seqread.h), which
 * step 2 reads from the sequence relation itself: one UNION ALL query, only
 * when there is such a sequence, so that the pause does not pay for it.
 */
static void seq_read_cb(void *arg, const struct control_result *r)
{
	struct cutover *co = arg;
	struct pq_buf raw;
	int64_t margin = cutover_cfg(co)->d.sequence_margin;

	if (!seq_answer(co, r, "read", co->from))
		return;
	pq_buf_init(&raw);
	pq_buf_reset(&co->seq_sql);
	co->rec.sequences_synced = 0;
	for (int i = 0; r->res && i < PQntuples(r->res); i++) {
		const char *qname = PQgetvalue(r->res, i, SEQ_LIST_QNAME);
		long long last, inc;

		if (!cutover_seq_selected(cutover_cfg(co), PQgetvalue(r->res, i, SEQ_LIST_NAME)))
			continue;
		if (!seq_parse_int(PQgetvalue(r->res, i, SEQ_LIST_INCREMENT), &inc)) {
			pq_buf_free(&raw);
			cutover_fail(co, SQLSTATE_INTERNAL_ERROR,
				     "could not read sequence %s: unexpected increment \"%s\"",
				     qname, PQgetvalue(r->res, i, SEQ_LIST_INCREMENT));
			return;
		}
		co->rec.sequences_synced++;
		if (PQgetisnull(r->res, i, SEQ_LIST_LAST)) {
			seq_raw_append(&raw, qname, inc);
			continue;
		}
		if (!seq_parse_int(PQgetvalue(r->res, i, SEQ_LIST_LAST), &last)) {
			pq_buf_free(&raw);
			cutover_fail(co, SQLSTATE_INTERNAL_ERROR,
				     "could not read sequence %s: unexpected value \"%s\"", qname,
				     PQgetvalue(r->res, i, SEQ_LIST_LAST));
			return;
		}
		seq_append_set(&co->seq_sql, qname, last, true, inc, margin);
	}
	if (raw.len == 0 && !raw.failed) {
		pq_buf_free(&raw);
		seq_send_batch(co);
		return;
	}
	pq_put_u8(&raw, 0);
	if (raw.failed) {
		pq_buf_free(&raw);
		cutover_fail(co, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	if (!cutover_query(co, co->from, (const char *)raw.data, CONTROL_QUERY_TIMEOUT_MS,
			   seq_raw_cb)) {
		pq_buf_free(&raw); /* the switch failed */
		return;
	}
	pq_buf_free(&raw);
}

void cutover_sequences_enter(struct cutover *co)
{
	if (strcmp(cutover_cfg(co)->d.sequence_sync, "none") == 0) {
		cutover_phase_done(co);
		return;
	}
	if (!cutover_query(co, co->from, SEQ_LIST_SQL, CONTROL_QUERY_TIMEOUT_MS, seq_read_cb))
		return; /* the switch failed */
}
